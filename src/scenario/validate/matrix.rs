//! `[matrix]` → variants: one copy of the file per combination of the listed
//! values, each resolved into its own plan and labelled by what it overrides.

use std::collections::BTreeSet;
use std::path::Path;

use toml::Spanned;

use super::plan::resolve_plan;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::scenario::Variant;

/// More variants than this is almost certainly a typo in `[matrix]`.
const MAX_VARIANTS: usize = 256;

/// A matrix key and the values it takes.
type Axis = (String, Vec<Spanned<toml::Value>>);

/// Every variant of the scenario (one, `default`, without a matrix). `None`
/// when the matrix is too large to expand; other problems are in `errs` and
/// leave the variant out.
pub(super) fn variants(
    raw: &raw::Scenario,
    path: &Path,
    source: &str,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Option<Vec<Variant>> {
    let axes = axes(raw, errs);
    let combos = axes.iter().map(|(_, v)| v.len()).product::<usize>();
    if combos > MAX_VARIANTS {
        errs.push(
            raw.matrix.as_ref().map(Spanned::span),
            "matrix",
            format!("expands to {combos} variants; at most {MAX_VARIANTS} are allowed"),
        );
        return None;
    }
    // The same base mistake shows up in every variant: report it once.
    let mut seen = BTreeSet::new();
    let mut variants = Vec::new();
    for index in 0..combos.max(1) {
        let mut local = ScenarioErrors::new(path, source);
        let variant = variant(raw, &axes, index, dir, &mut local);
        for d in local.errors {
            let sp = d.span.clone().unwrap_or(0..0);
            if seen.insert((sp.start, sp.end, d.key.clone(), d.message.clone())) {
                errs.errors.push(d);
            }
        }
        variants.extend(variant);
    }
    Some(variants)
}

fn axes(raw: &raw::Scenario, errs: &mut ScenarioErrors) -> Vec<Axis> {
    let mut axes = Vec::new();
    if let Some(m) = &raw.matrix {
        for (key, values) in m.get_ref() {
            if values.get_ref().is_empty() {
                errs.push(
                    Some(values.span()),
                    format!("matrix.{key}"),
                    "has no values; list at least one",
                );
                continue;
            }
            axes.push((key.clone(), values.get_ref().clone()));
        }
    }
    axes
}

/// Combination number `index` (the last axis varies fastest), resolved.
fn variant(
    raw: &raw::Scenario,
    axes: &[Axis],
    index: usize,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Option<Variant> {
    let mut r = raw.clone();
    let mut overrides = Vec::new();
    let mut ok = true;
    let mut rest = index;
    let mut picks = vec![0; axes.len()];
    for (i, (_, values)) in axes.iter().enumerate().rev() {
        picks[i] = rest % values.len();
        rest /= values.len();
    }
    for ((key, values), pick) in axes.iter().zip(picks) {
        let value = &values[pick];
        if let Err(msg) = r.apply_override(key, value) {
            errs.push(Some(value.span()), format!("matrix.{key}"), msg);
            ok = false;
        }
        overrides.push((key.clone(), value_text(value.get_ref())));
    }
    let plan = resolve_plan(&r, dir, errs);
    let label = if overrides.is_empty() {
        "default".to_string()
    } else {
        overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match (plan, ok) {
        (Some(plan), true) => Some(Variant {
            label,
            overrides,
            plan,
        }),
        _ => None,
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::Mode;

    #[test]
    fn no_matrix_is_one_default_variant() {
        let s = valid(&http(""));
        assert_eq!(s.variants.len(), 1);
        assert_eq!(s.variants[0].label, "default");
        assert!(s.variants[0].overrides.is_empty());
    }

    #[test]
    fn combinations_vary_the_last_axis_fastest_and_are_labelled_by_their_overrides() {
        let s = valid(&format!(
            "{}[matrix]\n\"cache.enabled\" = [true, false]\nmode = [\"sequential\", \"parallel\"]\n",
            http("")
        ));
        let labels: Vec<&str> = s.variants.iter().map(|v| v.label.as_str()).collect();
        // Keys in order of name: cache.enabled, then mode.
        assert_eq!(
            labels,
            [
                "cache.enabled=true,mode=sequential",
                "cache.enabled=true,mode=parallel",
                "cache.enabled=false,mode=sequential",
                "cache.enabled=false,mode=parallel",
            ]
        );
        assert!(!s.variants[2].plan.cache.enabled);
        assert_eq!(s.variants[1].plan.mode, Mode::Parallel);
    }

    #[test]
    fn an_empty_axis_and_an_unknown_key_are_reported() {
        let m = problem(&format!("{}[matrix]\nseed = []\n", http("")), "matrix.seed");
        assert!(m.contains("no values"), "{m}");
        let m = problem(
            &format!("{}[matrix]\n\"cache.colour\" = [1]\n", http("")),
            "matrix.cache.colour",
        );
        assert!(m.contains("cannot be varied"), "{m}");
        let m = problem(
            &format!("{}[matrix]\n\"impair.jiter\" = [1]\n", http("")),
            "matrix.impair.jiter",
        );
        assert!(
            m.starts_with(
                "`impair.jiter` cannot be varied (did you mean `impair.jitter`?); use one of"
            ),
            "{m}"
        );
        let m = problem(
            &format!("{}[matrix]\n\"workload.w.requets\" = [1]\n", http("")),
            "matrix.workload.w.requets",
        );
        assert!(m.contains("(did you mean `workload.w.requests`?)"), "{m}");
    }

    fn http_of(v: &crate::scenario::Variant) -> &crate::scenario::HttpWorkload {
        match &v.plan.workloads[0].kind {
            crate::scenario::WorkloadKind::Http(h) => h,
            other => panic!("not http: {other:?}"),
        }
    }

    #[test]
    fn the_cache_policy_and_object_capacity_vary() {
        use crate::cache_policy::Policy;
        let s = valid(&format!(
            "[cache]\ncapacity_objects = 5\n{}[matrix]\n\"cache.policy\" = [\"lru\", \"sieve\", \"s3fifo\"]\n\
             \"cache.capacity_objects\" = [100, 1000, 10000]\n",
            http("objects = { count = 50000 }")
        ));
        let got: Vec<(Policy, Option<u64>)> = s
            .variants
            .iter()
            .map(|v| (v.plan.cache.policy, v.plan.cache.capacity_objects))
            .collect();
        // Keys in order of name: capacity_objects, then policy (fastest).
        let mut want = Vec::new();
        for n in [100, 1000, 10000] {
            for p in [Policy::Lru, Policy::Sieve, Policy::S3Fifo] {
                want.push((p, Some(n)));
            }
        }
        assert_eq!(got, want);
        let m = problem(
            &format!(
                "{}[matrix]\n\"cache.policy\" = [\"lru\", \"arc\"]\n",
                http("")
            ),
            "cache.policy",
        );
        assert!(m.contains("arc"), "{m}");
    }

    #[test]
    fn the_services_threads_sockets_and_max_age_vary() {
        use crate::server::ListenSockets;
        let s = valid(&format!(
            "{}[matrix]\n\"proxy.workers\" = [1, 2]\n\"proxy.listen_sockets\" = [\"shared\", \"per-worker\"]\n\
             \"origin.workers\" = [3]\n\"origin.listen_sockets\" = [\"per-worker\"]\n\"origin.max_age\" = [\"5s\"]\n",
            http("")
        ));
        let got: Vec<_> = s
            .variants
            .iter()
            .map(|v| {
                let p = &v.plan;
                (
                    p.proxy_workers.map(|n| n.get()),
                    p.proxy_listen_sockets,
                    p.origin_workers.map(|n| n.get()),
                    p.origin_listen_sockets,
                    p.origin_max_age,
                )
            })
            .collect();
        let (one, per) = (ListenSockets::Shared, ListenSockets::PerWorker);
        let o = (Some(3), per, Some(std::time::Duration::from_secs(5)));
        // Keys in order of name: proxy.listen_sockets, then proxy.workers (fastest).
        assert_eq!(
            got,
            [
                (Some(1), one, o.0, o.1, o.2),
                (Some(2), one, o.0, o.1, o.2),
                (Some(1), per, o.0, o.1, o.2),
                (Some(2), per, o.0, o.1, o.2),
            ]
        );
        // Validated as in [proxy]: the key and the accepted values named.
        let m = problem(
            &format!(
                "{}[matrix]\n\"proxy.listen_sockets\" = [\"both\"]\n",
                http("")
            ),
            "proxy.listen_sockets",
        );
        assert!(m.contains("per-worker"), "{m}");
        let m = problem(
            &format!("{}[matrix]\n\"proxy.max_age\" = [\"1s\"]\n", http("")),
            "matrix.proxy.max_age",
        );
        // The proxy has no max_age: the origin's is the one to vary.
        assert!(
            m.starts_with("`proxy.max_age` cannot be varied; use one of")
                && m.contains("origin.max_age"),
            "{m}"
        );
    }

    #[test]
    fn a_catalogs_fields_and_the_traffic_keys_vary() {
        use crate::traffic::{Arrivals, Popularity};
        use crate::workload::source::Source;
        let s = valid(&format!(
            "{}[matrix]\n\"workload.w.objects.alpha\" = [0.6, 1.0]\n\
             \"workload.w.arrivals\" = [\"constant\", \"poisson\"]\n",
            http("rate = 100\nduration = \"1s\"\nobjects = { count = 500, alpha = 0.8, size = \"1KiB\" }")
        ));
        let got: Vec<(f64, u64, u64, Arrivals)> = s
            .variants
            .iter()
            .map(|v| {
                let h = http_of(v);
                let Source::Catalog(c) = &h.traffic.source else {
                    panic!("a catalog")
                };
                let Popularity::Zipf { alpha } = c.popularity() else {
                    panic!("zipf")
                };
                (alpha, c.count(), c.sizes().max(), h.traffic.arrivals)
            })
            .collect();
        assert_eq!(
            got,
            [
                (0.6, 500, 1024, Arrivals::Constant),
                (1.0, 500, 1024, Arrivals::Constant),
                (0.6, 500, 1024, Arrivals::Poisson),
                (1.0, 500, 1024, Arrivals::Poisson),
            ],
            "the other catalog fields stay as written"
        );
        // A whole catalog table, and a bad value named at the matrix.
        let s = valid(&format!(
            "{}[matrix]\n\"workload.w.objects\" = [{{ count = 10, popularity = \"uniform\" }}]\n",
            http("")
        ));
        let Source::Catalog(c) = &http_of(&s.variants[0]).traffic.source else {
            panic!("a catalog")
        };
        assert_eq!((c.count(), c.popularity()), (10, Popularity::Uniform));
        let m = problem(
            &format!(
                "{}[matrix]\n\"workload.w.objects.alpha\" = [0.0]\n",
                http("objects = { count = 10 }")
            ),
            "workload.w.objects.alpha",
        );
        assert!(m.contains("0"), "{m}");
        let m = problem(
            &format!(
                "{}[matrix]\n\"workload.w.objects.alpah\" = [1.0]\n",
                http("objects = { count = 10 }")
            ),
            "matrix.workload.w.objects.alpah",
        );
        assert!(m.contains("did you mean `workload.w.objects.alpha`"), "{m}");
    }

    #[test]
    fn the_congestion_control_varies() {
        let s = valid(&format!(
            "[topology]\nhosts = \"netns\"\n{}[matrix]\n\"topology.congestion\" = [\"bbr\", \"cubic\"]\n",
            http("")
        ));
        let got: Vec<Option<&str>> = s
            .variants
            .iter()
            .map(|v| v.plan.topology.congestion.as_deref())
            .collect();
        assert_eq!(got, [Some("bbr"), Some("cubic")]);
    }

    #[test]
    fn too_many_variants_stop_the_expansion() {
        let values: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let list = values.join(", ");
        let m = problem(
            &format!(
                "{}[matrix]\nseed = [{list}]\n\"workload.w.requests\" = [{list}]\n",
                http("")
            ),
            "matrix",
        );
        assert!(m.contains("289 variants"), "{m}");
    }

    #[test]
    fn a_base_mistake_is_reported_once_not_once_per_variant() {
        let p = problems(&format!(
            "{}[matrix]\nseed = [1, 2, 3]\n",
            http("requests = 0")
        ));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].0, "workload.w.requests");
    }
}
