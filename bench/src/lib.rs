//! The xdhcp6 load generator.
//!
//! A sans-IO core ([`generator::Generator`]: client population, scenarios, message building,
//! reply validation, statistics) driven by nanosecond timestamps passed in, so that it is tested
//! without sockets, and a thin IO shell ([`runner`], [`transport`]) that paces it over UDP
//! sockets or AF_XDP ([`afxdp`], framing in [`frame`]). [`reflect`] is the AF_XDP bounce
//! server of `xdhcp6-reflect`. See README.md for the command line.
#![forbid(unsafe_code)]

pub mod afxdp;
pub mod frame;
pub mod generator;
pub mod lifecycle;
pub mod message;
pub mod pacing;
pub mod population;
pub mod reflect;
pub mod report;
pub mod runner;
pub mod signal;
pub mod stats;
pub mod transport;
