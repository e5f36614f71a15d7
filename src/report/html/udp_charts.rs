//! The charts of a UDP workload: RTT over time with losses marked, the RTT
//! CDF, loss and jitter per time slice.

use super::charts::{self, AxisMarks, Corner, Draw, Scale, Series, XyChart};
use super::data::UdpSamples;
use super::model::{udp_of, Key, Model, WorkloadId};
use super::{figure, keyed, ms_axis, series, spread_scale, time_unit, Found, CDF_POINTS, SLICES};

/// RTT over time with losses marked, the RTT CDF, loss and jitter per slice.
pub(super) fn udp_charts(
    o: &mut String,
    model: &Model,
    w: &WorkloadId,
    keys: &[&Key],
) -> anyhow::Result<bool> {
    let found: Found<UdpSamples> = keys
        .iter()
        .filter_map(|k| udp_of(&model.runs[k.run], k, w).map(|s| (*k, s)))
        .collect();
    if found.is_empty() {
        return Ok(false);
    }
    let max_ms = found
        .iter()
        .flat_map(|(_, s)| s.samples.iter().map(|x| x.send_ms))
        .fold(0.0, f64::max);
    rtt_over_time(o, w, &found, max_ms)?;
    rtt_cdf(o, w, &found)?;
    udp_slices(o, w, &found, max_ms)?;
    Ok(true)
}

/// One point per datagram (thinned to the extremes per pixel column), and a
/// tick on the time axis per lost datagram.
pub(super) fn rtt_over_time(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<UdpSamples>,
    max_ms: f64,
) -> anyhow::Result<()> {
    let (div, unit) = time_unit(max_ms);
    let mut chart = XyChart {
        title: format!("{}: round-trip time over time", w.name),
        x_desc: format!("send time ({unit})"),
        y_desc: "RTT (ms)".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: Vec::new(),
        marks: Vec::new(),
        legend: Corner::UpperRight,
    };
    let mut notes = Vec::new();
    for (k, s) in found {
        let pts: Vec<(f64, f64)> = s
            .samples
            .iter()
            .filter_map(|x| x.rtt_ms.map(|r| (x.send_ms / div, r)))
            .collect();
        let thin = series::min_max_buckets(&pts, 0.0, max_ms / div, charts::PLOT_COLUMNS);
        let lost: Vec<f64> = s
            .samples
            .iter()
            .filter(|x| x.status == crate::metrics::PacketStatus::Lost)
            .map(|x| x.send_ms / div)
            .collect();
        notes.push(format!(
            "{} datagrams, {} lost{}",
            s.samples.len(),
            lost.len(),
            if thin.len() < pts.len() {
                format!(
                    ", drawn as the lowest and highest RTT of each of {} time buckets",
                    charts::PLOT_COLUMNS
                )
            } else {
                String::new()
            }
        ));
        chart.series.push(Series {
            label: k.label.clone(),
            style: k.style,
            draw: Draw::Points,
            points: thin,
        });
        chart.marks.push(AxisMarks {
            style: k.style,
            xs: series::marks(lost.into_iter(), 0.0, max_ms / div, charts::PLOT_COLUMNS),
        });
    }
    if chart.marks.iter().any(|m| !m.xs.is_empty()) {
        chart
            .title
            .push_str(" (ticks on the time axis: lost datagrams)");
    }
    figure(
        o,
        "rtt-time",
        w,
        &keyed(found, &notes),
        &charts::xy(&chart)?,
    );
    Ok(())
}

/// The RTT distribution of every reply as a CDF.
pub(super) fn rtt_cdf(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<UdpSamples>,
) -> anyhow::Result<()> {
    let sorted: Vec<Vec<f64>> = found
        .iter()
        .map(|(_, s)| series::sorted(s.samples.iter().filter_map(|x| x.rtt_ms)))
        .collect();
    let refs: Vec<&Vec<f64>> = sorted.iter().collect();
    let x_scale = spread_scale(&refs);
    let chart = XyChart {
        title: format!("{}: RTT distribution (CDF)", w.name),
        x_desc: ms_axis("RTT", x_scale),
        y_desc: "fraction of replies ≤ RTT".into(),
        x_scale,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&sorted)
            .map(|((k, _), v)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: series::cdf_points(v, CDF_POINTS),
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::LowerRight,
    };
    let notes: Vec<String> = sorted
        .iter()
        .map(
            |v| match (series::quantile(v, 0.5), series::quantile(v, 0.99)) {
                (Some(a), Some(b)) => format!("p50 {a:.3} ms, p99 {b:.3} ms ({} replies)", v.len()),
                _ => "no replies".into(),
            },
        )
        .collect();
    figure(o, "rtt-cdf", w, &keyed(found, &notes), &charts::xy(&chart)?);
    Ok(())
}

/// Loss and jitter per time slice, one chart each.
pub(super) fn udp_slices(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<UdpSamples>,
    max_ms: f64,
) -> anyhow::Result<()> {
    let (div, unit) = time_unit(max_ms);
    let slices: Vec<Vec<series::Slice>> = found
        .iter()
        .map(|(_, s)| series::udp_slices(&s.samples, SLICES))
        .collect();
    let chart = |title: &str, y_desc: &str, f: &dyn Fn(&series::Slice) -> Option<f64>| XyChart {
        title: format!("{}: {title}", w.name),
        x_desc: format!("send time ({unit})"),
        y_desc: y_desc.into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&slices)
            .map(|((k, _), sl)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: sl
                    .iter()
                    .filter_map(|s| f(s).map(|v| (s.mid_ms() / div, v)))
                    .collect(),
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::UpperRight,
    };
    let notes: Vec<String> = slices
        .iter()
        .map(|sl| {
            let width = sl.first().map_or(0.0, |s| s.end_ms - s.start_ms);
            format!("{} slices of {} ms", sl.len(), charts::number(width))
        })
        .collect();
    let loss = chart("loss per time slice", "loss (%)", &|s| s.loss_percent());
    figure(
        o,
        "loss-slices",
        w,
        &keyed(found, &notes),
        &charts::xy(&loss)?,
    );
    let jitter = chart("jitter per time slice", "mean |ΔRTT| (ms)", &|s| {
        s.jitter_ms
    });
    figure(
        o,
        "jitter-slices",
        w,
        &keyed(found, &notes),
        &charts::xy(&jitter)?,
    );
    Ok(())
}
