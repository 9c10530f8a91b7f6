//! The command line's small languages: workload specs, durations, sizes and thresholds.

use std::time::Duration;

use anyhow::{anyhow, bail, ensure};

/// What one operation of a workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Pull a seeded image: manifest by tag, then config and layers.
    Pull,
    /// Push a fresh image: each blob by POST + PUT, then the manifest under a new tag.
    Push,
    /// OperatorHub's App Registry pattern: list the namespace, show a package's default
    /// release, fetch its blob.
    ApprStorm,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Pull, Kind::Push, Kind::ApprStorm];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pull => "pull",
            Kind::Push => "push",
            Kind::ApprStorm => "appr-storm",
        }
    }

    /// The requests an operation is made of, each with its own latency histogram.
    pub fn steps(self) -> &'static [&'static str] {
        match self {
            Kind::Pull => &["token", "manifest", "blob"],
            Kind::Push => &["token", "upload-start", "upload", "manifest"],
            Kind::ApprStorm => &["list", "show", "blob"],
        }
    }

    fn parse(text: &str) -> anyhow::Result<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            anyhow!(
                "unknown workload {text:?} (expected pull, push, appr-storm, mixed or weights like pull=80,push=20)"
            )
        })
    }
}

/// `mixed`: mostly pulls, some App Registry polling, a few pushes.
const MIXED: [(Kind, u32); 3] = [(Kind::Pull, 80), (Kind::Push, 5), (Kind::ApprStorm, 15)];

/// One group of workers: how many, at what rate, doing which operations in which proportion.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    pub name: String,
    /// Operation kinds with their weights (all positive).
    pub mix: Vec<(Kind, u32)>,
    pub concurrency: usize,
    /// Operations started per second for the whole group (open loop); `None`: each worker
    /// starts its next operation as soon as the last one ends (closed loop).
    pub rate: Option<f64>,
}

impl WorkloadSpec {
    /// `KINDS[:CONCURRENCY][@RATE]`, where KINDS is `pull`, `push`, `appr-storm`, `mixed` or
    /// `KIND=WEIGHT,...`; what is left out comes from `concurrency` and `rate`.
    pub fn parse(text: &str, concurrency: usize, rate: Option<f64>) -> anyhow::Result<WorkloadSpec> {
        let (rest, rate) = match text.split_once('@') {
            Some((rest, r)) => (rest, Some(parse_rate(r)?)),
            None => (text, rate),
        };
        let (kinds, concurrency) = match rest.split_once(':') {
            Some((kinds, c)) => (kinds, parse_concurrency(c)?),
            None => (rest, concurrency),
        };
        let (name, mix) = parse_mix(kinds.trim())?;
        Ok(WorkloadSpec { name, mix, concurrency, rate })
    }

    pub fn includes(&self, kind: Kind) -> bool {
        self.mix.iter().any(|(k, _)| *k == kind)
    }
}

fn parse_mix(text: &str) -> anyhow::Result<(String, Vec<(Kind, u32)>)> {
    if text == "mixed" {
        return Ok(("mixed".into(), MIXED.to_vec()));
    }
    if !text.contains('=') {
        let kind = Kind::parse(text)?;
        return Ok((kind.name().into(), vec![(kind, 1)]));
    }
    let mut mix: Vec<(Kind, u32)> = Vec::new();
    for part in text.split(',') {
        let (kind, weight) = part.split_once('=').ok_or_else(|| anyhow!("{part:?} in {text:?} is not KIND=WEIGHT"))?;
        let kind = Kind::parse(kind.trim())?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| anyhow!("the weight {weight:?} of {} is not a whole number", kind.name()))?;
        ensure!(!mix.iter().any(|(k, _)| *k == kind), "{} appears twice in {text:?}", kind.name());
        if weight > 0 {
            mix.push((kind, weight));
        }
    }
    ensure!(!mix.is_empty(), "the mix {text:?} has no positive weight");
    mix.sort();
    Ok(("mix".into(), mix))
}

pub fn parse_concurrency(text: &str) -> anyhow::Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("concurrency {text:?} is not a positive whole number"),
    }
}

pub fn parse_rate(text: &str) -> anyhow::Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => bail!("rate {text:?} is not a positive number of operations per second"),
    }
}

/// `30s`, `500ms`, `2m`, `1h`, or a number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (value, unit) = split_unit(text);
    let value: f64 = value.parse().map_err(|_| anyhow!("{text:?} is not a duration (e.g. 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => bail!("{text:?} has an unknown unit (ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| anyhow!("{text:?} is not a duration"))
}

/// `64KiB`, `1MiB`, `1MB`, `4k`, or a number of bytes.
pub fn parse_size(text: &str) -> anyhow::Result<usize> {
    let (value, unit) = split_unit(text);
    let value: f64 = value.parse().map_err(|_| anyhow!("{text:?} is not a size (e.g. 64KiB, 1MiB)"))?;
    let unit_bytes: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        _ => bail!("{text:?} has an unknown unit (B, KiB, MiB, GiB, KB, MB, GB)"),
    };
    let bytes = (value * unit_bytes).round();
    ensure!(bytes.is_finite() && bytes >= 0.0 && bytes <= usize::MAX as f64, "{text:?} is not a size");
    Ok(bytes as usize)
}

/// `10%` or `10` (percent); returns the fraction.
pub fn parse_threshold(text: &str) -> anyhow::Result<f64> {
    let number = text.trim().trim_end_matches('%');
    match number.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p / 100.0),
        _ => bail!("threshold {text:?} is not a percentage (e.g. 10%)"),
    }
}

fn split_unit(text: &str) -> (&str, &str) {
    let text = text.trim();
    let at = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    (&text[..at], text[at..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_specs() {
        let spec = WorkloadSpec::parse("pull", 8, None).expect("parses");
        assert_eq!(spec, WorkloadSpec { name: "pull".into(), mix: vec![(Kind::Pull, 1)], concurrency: 8, rate: None });
        let spec = WorkloadSpec::parse("appr-storm:256@20000", 8, None).expect("parses");
        assert_eq!((spec.name.as_str(), spec.concurrency, spec.rate), ("appr-storm", 256, Some(20000.0)));
        let spec = WorkloadSpec::parse("push@2.5", 4, Some(9.0)).expect("parses");
        assert_eq!((spec.concurrency, spec.rate), (4, Some(2.5)));
        let spec = WorkloadSpec::parse("push=10,pull=70,appr-storm=20:64", 8, Some(100.0)).expect("parses");
        assert_eq!(spec.name, "mix");
        assert_eq!(spec.mix, vec![(Kind::Pull, 70), (Kind::Push, 10), (Kind::ApprStorm, 20)]);
        assert_eq!((spec.concurrency, spec.rate), (64, Some(100.0)));
        assert_eq!(WorkloadSpec::parse("mixed", 1, None).expect("parses").mix.len(), 3);
        assert_eq!(WorkloadSpec::parse("pull=0,push=1", 1, None).expect("parses").mix, vec![(Kind::Push, 1)]);
        for bad in [
            "pul",
            "pull:0",
            "pull:x",
            "pull@0",
            "pull@-3",
            "pull=x",
            "pull=1,pull=2",
            "pull=0",
            "pull=1,storm=2",
            "pull=1,push",
        ] {
            assert!(WorkloadSpec::parse(bad, 1, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_sizes_thresholds() {
        assert_eq!(parse_duration("30s").expect("ok"), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").expect("ok"), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").expect("ok"), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").expect("ok"), Duration::from_millis(1500));
        assert!(parse_duration("3 days").is_err() && parse_duration("s").is_err());
        assert_eq!(parse_size("64KiB").expect("ok"), 65536);
        assert_eq!(parse_size("1MB").expect("ok"), 1_000_000);
        assert_eq!(parse_size("100").expect("ok"), 100);
        assert!(parse_size("1 parsec").is_err());
        assert_eq!(parse_threshold("10%").expect("ok"), 0.1);
        assert_eq!(parse_threshold("25").expect("ok"), 0.25);
        assert!(parse_threshold("-1%").is_err());
    }
}
