//! The miss-ratio curve: when a matrix varies the cache's capacity
//! (`cache.capacity_objects` or `cache.capacity`), the miss ratio
//! (1 − `cache_hit_ratio`) against the capacity, one line per
//! `cache.policy`, as cache papers draw it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::charts::{self, Corner, Draw, Scale, Series, XyChart};
use super::figure_with;
use super::headline::headline_value;
use super::model::{Key, Model, WorkloadId};
use super::page::escape;
use crate::units::ByteSize;

/// A variant's capacity (objects, or bytes) and policy, from its label.
fn capacity_and_policy(variant: &str) -> Option<(f64, bool, String)> {
    let mut capacity = None;
    let mut policy = "lru".to_string();
    for part in variant.split(',') {
        match part.trim().split_once('=') {
            Some(("cache.capacity_objects", v)) => capacity = Some((v.parse().ok()?, true)),
            Some(("cache.capacity", v)) if capacity.is_none() => {
                capacity = Some((
                    v.trim_matches('"').parse::<ByteSize>().ok()?.bytes() as f64,
                    false,
                ))
            }
            Some(("cache.policy", v)) => policy = v.trim_matches('"').to_string(),
            _ => {}
        }
    }
    capacity.map(|(c, objects)| (c, objects, policy))
}

/// Draws the curve when at least two capacities were run; nothing otherwise.
pub(super) fn miss_ratio_curve(
    o: &mut String,
    model: &Model,
    w: &WorkloadId,
    keys: &[&Key],
) -> anyhow::Result<()> {
    let mut by_policy: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut objects = true;
    for k in keys {
        let Some((capacity, in_objects, policy)) = capacity_and_policy(&k.variant) else {
            continue;
        };
        let Some((hit, _, _)) = headline_value(model, k, w, "cache_hit_ratio") else {
            continue;
        };
        objects &= in_objects;
        by_policy
            .entry(policy)
            .or_default()
            .push((capacity, 1.0 - hit));
    }
    let capacities = by_policy
        .values()
        .flatten()
        .map(|p| p.0.to_bits())
        .collect::<std::collections::BTreeSet<_>>();
    if capacities.len() < 2 {
        return Ok(());
    }
    let series: Vec<Series> = by_policy
        .iter_mut()
        .enumerate()
        .map(|(i, (policy, points))| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label: policy.clone(),
                style: i,
                draw: Draw::Line,
                points: points.clone(),
            }
        })
        .collect();
    let chart = XyChart {
        title: format!("{}: miss ratio by cache size", w.name),
        x_desc: if objects {
            "cache capacity (objects)"
        } else {
            "cache capacity (bytes)"
        }
        .into(),
        y_desc: "miss ratio (1 − hit ratio)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series,
        marks: Vec::new(),
        legend: Corner::UpperRight,
    };
    let mut extra = String::from("<ul class=\"keys\">");
    for (i, (policy, points)) in by_policy.iter().enumerate() {
        let text: Vec<String> = points
            .iter()
            .map(|(c, m)| format!("{} → {:.3}", charts::number(*c), m))
            .collect();
        let _ = write!(
            extra,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}: {}</li>",
            charts::colour_hex(i),
            escape(policy),
            escape(&text.join(", "))
        );
    }
    extra.push_str("</ul>");
    figure_with(
        o,
        "miss-ratio-curve",
        w,
        &[],
        &charts::xy(&chart)?,
        false,
        &extra,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_capacity_and_policy() {
        assert_eq!(
            capacity_and_policy("cache.capacity_objects=30,cache.policy=sieve"),
            Some((30.0, true, "sieve".into()))
        );
        assert_eq!(
            capacity_and_policy("cache.capacity=1MiB"),
            Some((1048576.0, false, "lru".into()))
        );
        assert_eq!(capacity_and_policy("cache.policy=fifo"), None);
    }
}
