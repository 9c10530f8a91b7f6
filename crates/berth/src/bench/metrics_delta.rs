//! The server's own view of the run: its Prometheus text scraped before and after, and the
//! growth of every counter and of every histogram's and summary's `_count` and `_sum`.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};

/// The counter-like series of one scrape, by `name{labels}` as the server wrote them.
pub type Sample = BTreeMap<String, f64>;

pub async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Sample> {
    let answer = http.get(url).send().await.with_context(|| format!("scraping {url}"))?;
    if !answer.status().is_success() {
        bail!("scraping {url}: {}", answer.status());
    }
    Ok(parse(&answer.text().await.with_context(|| format!("reading {url}"))?))
}

/// Parses the text format: `# TYPE name kind` lines say which series count, sample lines are
/// `name{labels} value [timestamp]`. Untyped series count when their name ends in `_total`.
pub fn parse(text: &str) -> Sample {
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    let mut sample = Sample::new();
    for line in text.lines().map(str::trim) {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let mut words = declaration.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                kinds.insert(name, kind);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((series, name, rest)) = split_series(line) else { continue };
        let Some(Ok(value)) = rest.split_whitespace().next().map(str::parse::<f64>) else { continue };
        let counts = match kinds.get(name) {
            Some(&"counter") => true,
            Some(_) => false,
            None => {
                let base = name.strip_suffix("_count").or_else(|| name.strip_suffix("_sum"));
                base.and_then(|b| kinds.get(b))
                    .map_or(name.ends_with("_total"), |k| matches!(*k, "histogram" | "summary"))
            }
        };
        if counts {
            sample.insert(series.to_owned(), value);
        }
    }
    sample
}

/// `(series, metric name, rest of the line)`; label values may hold spaces and `}`.
fn split_series(line: &str) -> Option<(&str, &str, &str)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if !line[name_end..].starts_with('{') {
        return Some((name, name, &line[name_end..]));
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line[name_end..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => {
                let end = name_end + i + 1;
                return Some((&line[..end], name, &line[end..]));
            }
            _ => {}
        }
    }
    None
}

/// What grew between two scrapes (series absent before count from zero; a counter that went
/// down means the server restarted, and its new value is the growth).
pub fn delta(before: &Sample, after: &Sample) -> Sample {
    after
        .iter()
        .filter_map(|(series, &value)| {
            let old = before.get(series).copied().unwrap_or(0.0);
            let grown = if value >= old { value - old } else { value };
            (grown != 0.0).then(|| (series.clone(), grown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP berth_http_requests_total Requests answered.
# TYPE berth_http_requests_total counter
berth_http_requests_total{class="pull",route="manifest",status="200"} 10
berth_http_requests_total{class="pull",route="odd } name",status="200"} 1
# TYPE berth_requests_in_flight gauge
berth_requests_in_flight{class="pull"} 3
# TYPE berth_http_request_duration_seconds histogram
berth_http_request_duration_seconds_bucket{class="pull",le="0.005"} 9
berth_http_request_duration_seconds_sum{class="pull"} 0.5
berth_http_request_duration_seconds_count{class="pull"} 10
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 0.01
rpc_duration_seconds_count 4
legacy_total 2 1700000000000
"#;

    #[test]
    fn keeps_counters_and_histogram_totals() {
        let sample = parse(BEFORE);
        let keys: Vec<&str> = sample.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                r#"berth_http_request_duration_seconds_count{class="pull"}"#,
                r#"berth_http_request_duration_seconds_sum{class="pull"}"#,
                r#"berth_http_requests_total{class="pull",route="manifest",status="200"}"#,
                r#"berth_http_requests_total{class="pull",route="odd } name",status="200"}"#,
                "legacy_total",
                "rpc_duration_seconds_count",
            ]
        );
        assert_eq!(sample["legacy_total"], 2.0);
    }

    #[test]
    fn delta_is_growth() {
        let before = parse(BEFORE);
        let after = parse(&BEFORE.replace("} 10\n", "} 25\n").replace("legacy_total 2", "legacy_total 1"));
        let grown = delta(&before, &after);
        assert_eq!(grown[r#"berth_http_requests_total{class="pull",route="manifest",status="200"}"#], 15.0);
        assert_eq!(grown[r#"berth_http_request_duration_seconds_count{class="pull"}"#], 15.0);
        assert_eq!(grown["legacy_total"], 1.0, "a reset counts from zero");
        assert_eq!(grown.len(), 3);
    }
}
