//! The Grafana dashboard (`dist/grafana/xdhcp6.json`), the Prometheus alert rules
//! (`dist/prometheus/xdhcp6-alerts.yml`) and the metrics reference of `docs/observability.md`,
//! held against what xdhcp6d exports.
//!
//! Every PromQL expression must parse; every metric it selects must be exported, with every
//! label it matches, groups by or asks `label_values` for, and every label value it matches
//! exactly. Names come from the expressions' syntax trees (promql-parser), so functions,
//! keywords and label names never pass for metric names, and a histogram's `_bucket`, `_sum`
//! or `_count` series is looked up as the sample it is. The exports come from
//! `metrics::render` with every source wired (no root needed) and from running servers on the
//! UDP and the XDP datapath after real traffic (root). Renaming a metric, a label or a label
//! value fails these tests until the dashboard, the rules and the reference follow.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::label::{METRIC_NAME, MatchOp};
use promql_parser::parser::{self, Expr, LabelModifier, VectorSelector};
use serde_json::Value;
use xdhcp6_common::Counters;
use xdhcp6_engine::Destination;
use xdhcp6_engine::Engine;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::LeaseTable;
use xdhcp6_engine::testing::{self, Client, ReplyView};
use xdhcp6d::metrics::{self, JournalHealth, Sources};
use xdhcp6d::stats::WorkerStats;
use yaml_rust2::{Yaml, YamlLoader};

use common::{DaemonOptions, Datapath, Exchange, fixtures, metric_sum};

const DASHBOARD: &str = include_str!("../../../dist/grafana/xdhcp6.json");
const ALERTS: &str = include_str!("../../../dist/prometheus/xdhcp6-alerts.yml");
const REFERENCE: &str = include_str!("../../../docs/observability.md");
const SPLIT_A: &str = include_str!("../../../examples/split-a.toml");

/// The data source every panel and query names: the dashboard's data source variable.
const DATASOURCE_UID: &str = "${DS_PROMETHEUS}";

/// Labels Prometheus adds to every series of a target at scrape time.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// Series Prometheus makes itself for every target; alert rules may use them.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

/// Grafana's own variables, with a value that parses in their place.
const GRAFANA_VARIABLES: [(&str, &str); 3] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
];

/// Where the metrics reference table starts and ends in docs/observability.md.
const REFERENCE_START: &str = "<!-- metrics-reference:start -->";
const REFERENCE_END: &str = "<!-- metrics-reference:end -->";

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

// ---------------------------------------------------------------------------------------------
// What the exporter shows.

/// One scrape: each family's TYPE and the label sets of each sample name.
#[derive(Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                scrape.types.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("# HELP name text");
                scrape.helps.insert(name.to_owned(), help.to_owned());
            } else if !line.is_empty() && !line.starts_with('#') {
                let (name, labels) = sample_line(line);
                scrape.samples.entry(name).or_default().push(labels);
            }
        }
        scrape
    }

    /// The label names the samples of `metric` carry, all of them together.
    fn label_names(&self, metric: &str) -> BTreeSet<String> {
        self.samples
            .get(metric)
            .into_iter()
            .flatten()
            .flat_map(|labels| labels.keys().cloned())
            .collect()
    }
}

/// The name and labels of one sample line (`name{a="x",b="y"} value`).
fn sample_line(line: &str) -> (String, BTreeMap<String, String>) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_owned();
    let mut labels = BTreeMap::new();
    if line[end..].starts_with('{') {
        let mut rest = &line[end + 1..];
        while !rest.starts_with('}') {
            let (label, after) = rest.split_once("=\"").expect("label=\"value\"");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next().expect("a closing quote") {
                    (_, '\\') => match chars.next().expect("an escaped character") {
                        (_, 'n') => value.push('\n'),
                        (_, other) => value.push(other),
                    },
                    (at, '"') => break at,
                    (_, other) => value.push(other),
                }
            };
            labels.insert(label.to_owned(), value);
            rest = &after[close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    (name, labels)
}

/// A scrape of `metrics::render` with every source wired: the engine of split-a.toml (an
/// address and a delegated-prefix slice, the latter with a bitmap), one worker, the journal
/// and an attached XDP program.
fn rendered() -> String {
    let config = testing::config(SPLIT_A);
    let table = Arc::new(LeaseTable::with_capacity(
        1024,
        SaltKey::from_salt(&config.server.salt),
    ));
    let engine = Arc::new(Engine::new(config, table).expect("the engine starts"));
    let sources = Sources::new(vec![Arc::new(WorkerStats::default())])
        .with_engine(engine)
        .with_journal_lag(Arc::new(|| 0))
        .with_journal_health(Arc::new(|| JournalHealth {
            healthy: true,
            ..JournalHealth::default()
        }))
        .with_xdp(Arc::new(|| Some(Counters::default())))
        .with_reloads(Arc::new(|| xdhcp6d::reload::ReloadCounts {
            generation: 1,
            ..Default::default()
        }))
        .with_bulk_leasequery(Arc::default())
        .with_ddns(Some(Arc::new(xdhcp6d::ddns::DdnsCounts::default)));
    metrics::render(&sources)
}

// ---------------------------------------------------------------------------------------------
// What the dashboard and the rules ask for.

/// A metric selected by an expression, with the labels it matches (and the value, for `=`).
#[derive(Debug, PartialEq, Eq)]
struct Selector {
    origin: String,
    metric: String,
    labels: Vec<(String, Option<String>)>,
}

/// Labels an aggregation keeps (`by`), or that `label_values` lists, of the metrics below it.
#[derive(Debug, PartialEq, Eq)]
struct Grouping {
    origin: String,
    metrics: Vec<String>,
    labels: Vec<String>,
}

/// Everything the queries ask of the exporter, and what could not be read.
#[derive(Debug, Default)]
struct Uses {
    selectors: Vec<Selector>,
    groupings: Vec<Grouping>,
    problems: Vec<String>,
}

impl Uses {
    /// Adds one PromQL expression found at `origin`, Grafana variables (`variables` and the
    /// built-in ones) replaced by values that parse.
    fn add_expr(&mut self, origin: &str, expr: &str, variables: &[String]) {
        let Some(text) = self.substitute(origin, expr, variables) else {
            return;
        };
        match parser::parse(&text) {
            Ok(tree) => {
                walk(&tree, origin, self);
            }
            Err(error) => self
                .problems
                .push(format!("{origin}: {expr:?} is not PromQL: {error}")),
        }
    }

    /// Adds a Grafana `label_values(SELECTOR, LABEL)` query.
    fn add_label_values(&mut self, origin: &str, query: &str, variables: &[String]) {
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'));
        let Some((selector, label)) = inner.and_then(|inner| inner.rsplit_once(',')) else {
            self.problems.push(format!(
                "{origin}: {query:?} is not label_values(metric{{...}}, label)"
            ));
            return;
        };
        let Some(text) = self.substitute(origin, selector, variables) else {
            return;
        };
        match parser::parse(&text) {
            Ok(tree) => {
                let metrics = walk(&tree, origin, self);
                self.groupings.push(Grouping {
                    origin: origin.to_owned(),
                    metrics,
                    labels: vec![label.trim().to_owned()],
                });
            }
            Err(error) => self
                .problems
                .push(format!("{origin}: {selector:?} is not PromQL: {error}")),
        }
    }

    fn substitute(&mut self, origin: &str, expr: &str, variables: &[String]) -> Option<String> {
        let mut text = expr.to_owned();
        for (name, value) in GRAFANA_VARIABLES {
            text = text.replace(name, value);
        }
        for name in variables {
            text = text.replace(&format!("${{{name}}}"), ".+");
            text = text.replace(&format!("${name}"), ".+");
        }
        if text.contains('$') {
            self.problems.push(format!(
                "{origin}: {expr:?} uses a variable the dashboard lacks"
            ));
            return None;
        }
        Some(text)
    }
}

/// Collects the selectors and groupings of `expr`; returns the metrics it selects.
fn walk(expr: &Expr, origin: &str, uses: &mut Uses) -> Vec<String> {
    match expr {
        Expr::Aggregate(aggregate) => {
            let mut below = walk(&aggregate.expr, origin, uses);
            if let Some(param) = &aggregate.param {
                below.extend(walk(param, origin, uses));
            }
            if let Some(LabelModifier::Include(labels)) = &aggregate.modifier {
                uses.groupings.push(Grouping {
                    origin: origin.to_owned(),
                    metrics: below.clone(),
                    labels: labels.labels.clone(),
                });
            }
            below
        }
        Expr::Unary(unary) => walk(&unary.expr, origin, uses),
        Expr::Binary(binary) => {
            let mut below = walk(&binary.lhs, origin, uses);
            below.extend(walk(&binary.rhs, origin, uses));
            below
        }
        Expr::Paren(paren) => walk(&paren.expr, origin, uses),
        Expr::Subquery(subquery) => walk(&subquery.expr, origin, uses),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Vec::new(),
        Expr::VectorSelector(selector) => select(selector, origin, uses),
        Expr::MatrixSelector(matrix) => select(&matrix.vs, origin, uses),
        Expr::Call(call) => call
            .args
            .args
            .iter()
            .flat_map(|arg| walk(arg, origin, uses))
            .collect(),
        Expr::Extension(_) => {
            uses.problems.push(format!(
                "{origin}: an extension node the parser never makes"
            ));
            Vec::new()
        }
    }
}

fn select(selector: &VectorSelector, origin: &str, uses: &mut Uses) -> Vec<String> {
    let by_matcher = selector
        .matchers
        .matchers
        .iter()
        .find(|matcher| matcher.name == METRIC_NAME && matcher.op == MatchOp::Equal)
        .map(|matcher| matcher.value.clone());
    let Some(metric) = selector.name.clone().or(by_matcher) else {
        uses.problems.push(format!(
            "{origin}: a selector without a metric name: {selector}"
        ));
        return Vec::new();
    };
    if !selector.matchers.or_matchers.is_empty() {
        uses.problems.push(format!(
            "{origin}: `or` inside a selector is not checked: {selector}"
        ));
    }
    let labels = selector
        .matchers
        .matchers
        .iter()
        .filter(|matcher| matcher.name != METRIC_NAME)
        .map(|matcher| {
            let exact = (matcher.op == MatchOp::Equal).then(|| matcher.value.clone());
            (matcher.name.clone(), exact)
        })
        .collect();
    uses.selectors.push(Selector {
        origin: origin.to_owned(),
        metric: metric.clone(),
        labels,
    });
    vec![metric]
}

/// The dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("a panels array") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// The names of the dashboard's template variables.
fn variables(dashboard: &Value) -> Vec<String> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("a templating list")
        .iter()
        .filter_map(|variable| variable["name"].as_str().map(str::to_owned))
        .collect()
}

/// What the dashboard's panel targets and template queries use.
fn dashboard_uses(text: &str) -> Uses {
    let dashboard: Value = serde_json::from_str(text).expect("the dashboard is JSON");
    let variables = variables(&dashboard);
    let mut uses = Uses::default();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let origin = format!(
                "panel {title:?} target {}",
                target["refId"].as_str().unwrap_or("?")
            );
            match target["expr"].as_str() {
                Some(expr) => uses.add_expr(&origin, expr, &variables),
                None => uses.problems.push(format!("{origin}: no expr")),
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let origin = format!("variable {}", variable["name"]);
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str());
        match query {
            Some(query) => uses.add_label_values(&origin, query, &variables),
            None => uses.problems.push(format!("{origin}: no query")),
        }
    }
    uses
}

/// The alert rules' documents, parsed.
fn alert_rules(text: &str) -> Vec<Yaml> {
    let documents = YamlLoader::load_from_str(text).expect("the rules are YAML");
    let groups = documents[0]["groups"]
        .as_vec()
        .expect("a groups list")
        .clone();
    groups
        .iter()
        .flat_map(|group| group["rules"].as_vec().cloned().unwrap_or_default())
        .collect()
}

/// What the alert rules' expressions use.
fn alert_uses(text: &str) -> Uses {
    let mut uses = Uses::default();
    for rule in alert_rules(text) {
        let origin = format!("alert {}", rule["alert"].as_str().unwrap_or("?"));
        match rule["expr"].as_str() {
            Some(expr) => uses.add_expr(&origin, expr, &[]),
            None => uses.problems.push(format!("{origin}: no expr")),
        }
    }
    uses
}

/// Everything `uses` asks for that `scrape` lacks; metrics for which `elsewhere` holds are
/// not looked for (the XDP families on a UDP server).
fn missing(uses: &Uses, scrape: &Scrape, elsewhere: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = uses.problems.clone();
    let skipped = |metric: &str| PROMETHEUS_SERIES.contains(&metric) || elsewhere(metric);
    for selector in &uses.selectors {
        let Selector {
            origin,
            metric,
            labels,
        } = selector;
        if PROMETHEUS_SERIES.contains(&metric.as_str()) {
            continue;
        }
        if !metric.starts_with("xdhcp6_") {
            problems.push(format!("{origin}: {metric} is not an xdhcp6 metric"));
            continue;
        }
        if skipped(metric) {
            continue;
        }
        let Some(samples) = scrape.samples.get(metric) else {
            problems.push(format!("{origin}: {metric} is not exported"));
            continue;
        };
        for (label, exact) in labels {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            if !samples.iter().any(|sample| sample.contains_key(label)) {
                problems.push(format!("{origin}: {metric} has no label {label}"));
            } else if let Some(value) = exact
                && !samples
                    .iter()
                    .any(|sample| sample.get(label) == Some(value))
            {
                problems.push(format!(
                    "{origin}: {metric} has no series {label}={value:?}"
                ));
            }
        }
    }
    for grouping in &uses.groupings {
        for metric in grouping.metrics.iter().filter(|metric| !skipped(metric)) {
            let names = scrape.label_names(metric);
            for label in &grouping.labels {
                if !TARGET_LABELS.contains(&label.as_str()) && !names.contains(label) {
                    problems.push(format!(
                        "{}: {metric} has no label {label} to group by",
                        grouping.origin
                    ));
                }
            }
        }
    }
    problems
}

/// The metric names `uses` selects.
fn metric_names(uses: &Uses) -> BTreeSet<&str> {
    uses.selectors
        .iter()
        .map(|selector| selector.metric.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The dashboard's structure.

/// What is wrong with the dashboard as a Grafana import.
fn structure_problems(dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["title", "uid"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("no {key}"));
        }
    }
    if !dashboard["schemaVersion"].is_u64() {
        problems.push("no schemaVersion".to_owned());
    }
    let templating = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let variable = |name: &str| templating.iter().find(|variable| variable["name"] == name);
    match variable("DS_PROMETHEUS") {
        Some(source) if source["type"] == "datasource" && source["query"] == "prometheus" => {}
        _ => problems.push("no Prometheus data source variable DS_PROMETHEUS".to_owned()),
    }
    for name in ["instance", "link"] {
        match variable(name) {
            Some(query) if query["type"] == "query" => {
                if query["datasource"]["uid"] != DATASOURCE_UID {
                    problems.push(format!("variable {name} does not query {DATASOURCE_UID}"));
                }
            }
            _ => problems.push(format!("no query variable {name}")),
        }
    }

    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        if title.is_empty() {
            problems.push(format!("panel {} has no title", panel["id"]));
        }
        match panel["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("panel {title:?}: id {id} is used twice")),
            None => problems.push(format!("panel {title:?}: no numeric id")),
        }
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|key| grid[key].as_u64());
        match (h, w, x, y) {
            (Some(h), Some(w), Some(x), Some(y)) if h > 0 && w > 0 && x + w <= 24 => {
                boxes.push((title.clone(), [x, y, w, h]));
            }
            _ => problems.push(format!(
                "panel {title:?}: gridPos {grid} is not on the grid"
            )),
        }
        if panel["type"] == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != DATASOURCE_UID
            || panel["datasource"]["type"] != "prometheus"
        {
            problems.push(format!(
                "panel {title:?}: data source is not {DATASOURCE_UID}"
            ));
        }
        if panel["description"]
            .as_str()
            .is_none_or(|text| text.len() < 20)
        {
            problems.push(format!("panel {title:?}: no description"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel {title:?}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for target in &targets {
            if target["datasource"]["uid"] != DATASOURCE_UID {
                problems.push(format!(
                    "panel {title:?}: a target's data source is not {DATASOURCE_UID}"
                ));
            }
            if !target["refId"]
                .as_str()
                .is_some_and(|id| refs.insert(id.to_owned()))
            {
                problems.push(format!("panel {title:?}: refIds missing or repeated"));
            }
        }
    }
    for (at, (a, [ax, ay, aw, ah])) in boxes.iter().enumerate() {
        for (b, [bx, by, bw, bh]) in &boxes[at + 1..] {
            if ax < &(bx + bw) && bx < &(ax + aw) && ay < &(by + bh) && by < &(ay + ah) {
                problems.push(format!("panels {a:?} and {b:?} overlap"));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The reference table of docs/observability.md.

/// The rows of the reference: name, type and label names.
fn reference_rows(doc: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let start = doc
        .find(REFERENCE_START)
        .expect("the reference's start marker");
    let end = doc.find(REFERENCE_END).expect("the reference's end marker");
    let mut rows = BTreeMap::new();
    for line in doc[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `name` | type | `a`, `b` | meaning |
        let [_, name, kind, labels, meaning, _] = cells.as_slice() else {
            continue;
        };
        let Some(name) = name
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue;
        };
        assert!(!meaning.is_empty(), "{name}: no meaning in the reference");
        let labels = labels
            .split(',')
            .map(|label| label.trim().trim_matches('`'))
            .filter(|label| !label.is_empty() && *label != "—")
            .map(str::to_owned)
            .collect();
        let previous = rows.insert(name.to_owned(), ((*kind).to_owned(), labels));
        assert!(
            previous.is_none(),
            "{name} is listed twice in the reference"
        );
    }
    rows
}

/// The reference's rows as the exporter defines them, meaning from HELP.
fn expected_reference(scrape: &Scrape) -> BTreeMap<String, (String, BTreeSet<String>)> {
    scrape
        .types
        .iter()
        .map(|(name, kind)| (name.clone(), (kind.clone(), scrape.label_names(name))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests without root.

#[test]
fn dashboard_is_a_well_formed_grafana_import() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let problems = structure_problems(&dashboard);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn queries_yield_metric_names_labels_and_groupings() {
    let mut uses = Uses::default();
    uses.add_expr(
        "test",
        "sum by (instance, reason) (rate(xdhcp6_dropped_total{instance=~\"$instance\", \
         reason=\"malformed\"}[$__rate_interval])) / ignoring(instance) group_left \
         sum(histogram_quantile(0.9, xdhcp6_some_seconds_bucket)) > bool 2",
        &["instance".to_owned()],
    );
    assert_eq!(uses.problems, Vec::<String>::new());
    assert_eq!(
        uses.selectors,
        [
            Selector {
                origin: "test".to_owned(),
                metric: "xdhcp6_dropped_total".to_owned(),
                labels: vec![
                    ("instance".to_owned(), None),
                    ("reason".to_owned(), Some("malformed".to_owned())),
                ],
            },
            Selector {
                origin: "test".to_owned(),
                metric: "xdhcp6_some_seconds_bucket".to_owned(),
                labels: vec![],
            },
        ]
    );
    assert_eq!(
        uses.groupings,
        [Grouping {
            origin: "test".to_owned(),
            metrics: vec!["xdhcp6_dropped_total".to_owned()],
            labels: vec!["instance".to_owned(), "reason".to_owned()],
        }]
    );

    let mut broken = Uses::default();
    broken.add_expr("bad", "sum(rate(xdhcp6_dropped_total[5m])", &[]);
    broken.add_expr("var", "xdhcp6_leases{link=~\"$nope\"}", &[]);
    assert_eq!(broken.problems.len(), 2, "{:?}", broken.problems);
}

#[test]
fn every_query_uses_only_exported_metrics() {
    let scrape = Scrape::parse(&rendered());
    for (what, uses) in [
        ("dashboard", dashboard_uses(DASHBOARD)),
        ("alert rules", alert_uses(ALERTS)),
    ] {
        assert!(metric_names(&uses).len() > 10, "{what}: {uses:?}");
        let problems = missing(&uses, &scrape, |_| false);
        assert!(problems.is_empty(), "{what}: {problems:#?}");
    }
}

#[test]
fn a_renamed_metric_label_or_value_fails_the_check() {
    let scrape = Scrape::parse(&rendered());
    // The dashboard changes...
    for (from, to, expect) in [
        (
            "xdhcp6_pool_bound",
            "xdhcp6_pool_bindings",
            "xdhcp6_pool_bindings is not exported",
        ),
        (
            "type=\\\"rebind\\\"",
            "type=\\\"rebinds\\\"",
            "has no series type=\"rebinds\"",
        ),
        (
            "(instance, reason)",
            "(instance, cause)",
            "has no label cause to group by",
        ),
    ] {
        assert!(DASHBOARD.contains(from), "{from}");
        let uses = dashboard_uses(&DASHBOARD.replace(from, to));
        let problems = missing(&uses, &scrape, |_| false);
        assert!(
            problems.iter().any(|problem| problem.contains(expect)),
            "{from} -> {to}: {problems:#?}"
        );
    }
    // ...or the exporter does.
    let renamed = Scrape::parse(&rendered().replace("xdhcp6_rebind_foreign_total", "xdhcp6_x"));
    let problems = missing(&dashboard_uses(DASHBOARD), &renamed, |_| false);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("xdhcp6_rebind_foreign_total is not exported")),
        "{problems:#?}"
    );
}

#[test]
fn alert_rules_are_well_formed() {
    let rules = alert_rules(ALERTS);
    assert!(rules.len() >= 10, "{rules:?}");
    let mut names = BTreeSet::new();
    for rule in &rules {
        let name = rule["alert"].as_str().expect("every rule is an alert");
        assert!(names.insert(name.to_owned()), "{name} twice");
        assert!(rule["expr"].as_str().is_some(), "{name}: no expr");
        assert!(
            matches!(
                rule["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ),
            "{name}: severity"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name}: no {key}"
            );
        }
        if let Some(duration) = rule["for"].as_str() {
            assert!(
                promql_parser::util::parse_duration(duration).is_ok(),
                "{name}: for {duration:?}"
            );
        }
    }
}

#[test]
fn the_reference_lists_every_exported_metric() {
    let scrape = Scrape::parse(&rendered());
    let expected = expected_reference(&scrape);
    let documented = reference_rows(REFERENCE);
    if documented != expected {
        let table: String = expected
            .iter()
            .map(|(name, (kind, labels))| {
                let labels: Vec<String> = labels.iter().map(|label| format!("`{label}`")).collect();
                let labels = if labels.is_empty() {
                    "—".to_owned()
                } else {
                    labels.join(", ")
                };
                let help = scrape.helps.get(name).map_or("", String::as_str);
                format!("| `{name}` | {kind} | {labels} | {help} |\n")
            })
            .collect();
        panic!(
            "docs/observability.md's reference differs from what xdhcp6d exports; the rows \
             as exported (meaning from HELP):\n{table}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Against running servers (root).

/// A client of the other server of the split (the second halves of split-a.toml's pools)
/// Rebinds here, from the client namespace; whether a Reply came.
fn foreign_rebind(net: &common::Lab, n: u64) -> bool {
    net.netns("cli")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
            let mut client = Client::new(n);
            client.xid = n as u32 & 0x00ff_ffff;
            let theirs: Ipv6Addr = "2001:db8:1:0:8000::5".parse().unwrap();
            let their_prefix: Ipv6Addr = "2001:db8:100:8000::".parse().unwrap();
            let rebind = client
                .rebind()
                .ia_na(1, &[theirs])
                .ia_pd(2, &[(their_prefix, 56)])
                .encode();
            for _ in 0..3 {
                socket.send_to(&rebind, servers).unwrap();
                let mut buf = [0u8; 1500];
                let deadline = Instant::now() + Duration::from_millis(700);
                while Instant::now() < deadline {
                    let Ok((len, _)) = socket.recv_from(&mut buf) else {
                        break;
                    };
                    let reply = ReplyView::parse(&buf[..len], Destination::Client);
                    if reply.msg_type == MessageType::Reply && reply.xid == client.xid {
                        return true;
                    }
                }
            }
            false
        })
        .unwrap()
}

/// Serves a few clients (Solicit and Request, and a Rebind from the other server's slice).
fn serve_traffic(net: &common::Lab, first: u64) {
    for n in first..first + 3 {
        let exchange = common::exchange(net, CLIENT_IF, n);
        assert!(
            matches!(exchange, Exchange::Bound(_)),
            "client {n}: {exchange:?}\n{}",
            net.daemon_logs()
        );
    }
    assert!(foreign_rebind(net, first + 100), "{}", net.daemon_logs());
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object; run by cargo xtask test"]
fn every_metric_the_dashboard_and_the_rules_use_is_exported_by_a_running_server() {
    let dashboard = dashboard_uses(DASHBOARD);
    let alerts = alert_uses(ALERTS);
    let xdp_only = |metric: &str| metric.starts_with("xdhcp6_xdp_");

    let mut net = common::lab("dashboard", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let mut config = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    // DNS updates on, so that the `xdhcp6_ddns_*` families are exported: to a DNS server
    // that does not exist, whose updates fail and are retried, which changes no reply.
    config.push_str(
        "\n[link.ddns]\nforward-zone = \"example.net\"\nreverse-zone = \"ip6.arpa\"\n\
         servers = [\"2001:db8:53::53\"]\n",
    );

    // The UDP datapath: everything but the XDP program's families.
    let journal = net.path("udp.journal");
    net.start_daemon(
        "srv",
        &config,
        &DaemonOptions {
            datapath: Datapath::Udp,
            journal: &journal,
            durability: "always",
            log: "udp",
        },
    );
    serve_traffic(&net, 1);
    let text = net.metrics();
    assert!(
        metric_sum(
            &text,
            "xdhcp6_rebind_foreign_total{link=\"access-1\",kind=\"na\"}"
        ) >= 1,
        "{text}"
    );
    let udp = Scrape::parse(&text);
    for (what, uses) in [("dashboard", &dashboard), ("alert rules", &alerts)] {
        let problems = missing(uses, &udp, xdp_only);
        assert!(
            problems.is_empty(),
            "UDP datapath, {what}: {problems:#?}\n{text}"
        );
    }
    net.stop_daemon();

    // The XDP datapath: everything.
    let journal = net.path("xdp.journal");
    net.start_daemon(
        "srv",
        &config,
        &DaemonOptions {
            datapath: Datapath::XdpSkb,
            journal: &journal,
            durability: "always",
            log: "xdp",
        },
    );
    serve_traffic(&net, 11);
    let text = net.assert_steered(Datapath::XdpSkb, 6);
    let xdp = Scrape::parse(&text);
    for (what, uses) in [("dashboard", &dashboard), ("alert rules", &alerts)] {
        let problems = missing(uses, &xdp, |_| false);
        assert!(
            problems.is_empty(),
            "XDP datapath, {what}: {problems:#?}\n{text}"
        );
    }
    // The XDP families were the only ones the UDP server could leave out.
    assert!(
        metric_names(&dashboard).into_iter().any(xdp_only),
        "the dashboard shows the XDP program's counters"
    );
    net.stop_daemon();
}
