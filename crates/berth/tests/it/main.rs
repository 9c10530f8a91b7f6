//! Berth's integration tests: one binary, real servers on 127.0.0.1:0, real HTTP.

mod api;
mod appr;
mod auth;
mod bench;
mod blobs;
mod cli;
mod clients;
mod cnr;
mod config;
mod connections;
mod drain;
mod durability;
mod listing;
mod manifests;
mod matrix;
mod observability;
mod openapi;
mod proxies;
mod referrers;
mod scale_out;
mod storage;
mod support;
mod tls;
mod uploads;
