//! The xdhcp6 load generator.
//!
//! A sans-IO core ([`generator::Generator`]: client population, scenarios, message building,
//! reply validation, statistics) driven by nanosecond timestamps passed in, so that it is tested
//! without sockets, and a thin IO shell ([`runner`], [`transport`]) that paces it over UDP.
//! The AF_XDP transport is still to come. See README.md for the command line.

pub mod generator;
pub mod lifecycle;
pub mod message;
pub mod pacing;
pub mod population;
pub mod report;
pub mod runner;
pub mod signal;
pub mod stats;
pub mod transport;
