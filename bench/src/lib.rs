//! The xdhcp6 load generator.
//!
//! Emulated client populations over AF_XDP or UDP, scenarios, reports and plots arrive with
//! the load-generator work; the crate exists now so the workspace has its final shape.
