//! The simulation report as one self-contained HTML page with SVG plots: freshness over time,
//! recovery times and cost, each strategy side by side (people would rather look than read).

use crate::SimReport;
use std::collections::BTreeMap;
use std::fmt::Write;

const COLORS: [(&str, &str); 3] = [("norris", "#1b7f3b"), ("baseline", "#c0392b"), ("on_demand_only", "#2c5aa0")];
const W: f64 = 720.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;

/// A labelled figure of a report: a bar's height or a table cell.
type Metric<T> = (&'static str, fn(&SimReport) -> T);

fn color(key: &str) -> &'static str {
    COLORS.iter().find(|(k, _)| *k == key).map_or("#555", |(_, c)| c)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Freshness (seconds from a window's end to its commit) over virtual time, one series per
/// strategy, as an SVG scatter plot.
fn freshness_svg(reports: &BTreeMap<&str, SimReport>) -> String {
    let max_t = reports.values().flat_map(|r| r.freshness_over_time.iter().map(|p| p.0)).max().unwrap_or(1).max(1);
    let max_f = reports.values().flat_map(|r| r.freshness_over_time.iter().map(|p| p.1)).max().unwrap_or(1).max(1);
    let x = |t: i64| PAD + (W - 2.0 * PAD) * t as f64 / max_t as f64;
    let y = |f: i64| H - PAD + -(H - 2.0 * PAD) * f as f64 / max_f as f64;
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}">"#);
    axes(
        &mut svg,
        &format!("virtual hours (0 – {:.1})", max_t as f64 / 3600.0),
        &format!("freshness, s (max {max_f})"),
    );
    for (key, r) in reports {
        for (t, f) in &r.freshness_over_time {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.4" fill="{}" fill-opacity="0.5"/>"#,
                x(*t),
                y(*f),
                color(key)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn axes(svg: &mut String, x_label: &str, y_label: &str) {
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{b}" stroke="#333"/><text x="{cx}" y="{ly}" text-anchor="middle" font-size="12">{xl}</text><text x="14" y="{cy}" font-size="12" transform="rotate(-90 14 {cy})" text-anchor="middle">{yl}</text>"##,
        b = H - PAD,
        r = W - PAD,
        cx = W / 2.0,
        ly = H - 12.0,
        cy = H / 2.0,
        xl = escape(x_label),
        yl = escape(y_label)
    );
}

/// Bars: one group per metric, one bar per strategy.
fn bars_svg(reports: &BTreeMap<&str, SimReport>, metrics: &[Metric<f64>]) -> String {
    let max = reports.values().flat_map(|r| metrics.iter().map(move |(_, m)| m(r))).fold(0.0_f64, f64::max).max(1e-9);
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}">"#);
    axes(&mut svg, "", "");
    let group = (W - 2.0 * PAD) / metrics.len() as f64;
    let bar = group / (reports.len() as f64 + 1.0);
    for (g, (label, metric)) in metrics.iter().enumerate() {
        let gx = PAD + g as f64 * group;
        for (i, (key, r)) in reports.iter().enumerate() {
            let v = metric(r);
            let h = (H - 2.0 * PAD) * v / max;
            let bx = gx + bar * (i as f64 + 0.5);
            let _ = write!(
                svg,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{v:.1}</text>"#,
                H - PAD - h,
                bar * 0.9,
                color(key),
                bx + bar * 0.45,
                H - PAD - h - 3.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            gx + group / 2.0,
            H - PAD + 16.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn report_page(title: &str, reports: &BTreeMap<&str, SimReport>) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;max-width:780px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body><h1>{t}</h1><p>",
        t = escape(title)
    );
    for key in reports.keys() {
        let _ = write!(html, r#"<span style="color:{}">■ {key}</span> &nbsp; "#, color(key));
    }
    html.push_str("</p><h2>Freshness over time</h2>");
    html.push_str(&freshness_svg(reports));
    html.push_str("<h2>Recovery from spot loss (s)</h2>");
    html.push_str(&bars_svg(
        reports,
        &[("p50", |r| r.recovery_p50_secs as f64), ("p99", |r| r.recovery_p99_secs as f64)],
    ));
    html.push_str("<h2>Cost (USD)</h2>");
    html.push_str(&bars_svg(
        reports,
        &[
            ("clusters, whole run", |r| r.cluster_cost_usd),
            ("control plane per month", |r| r.control_plane_cost_usd_month),
        ],
    ));
    html.push_str("<h2>Figures</h2><table><tr><th></th>");
    for key in reports.keys() {
        let _ = write!(html, "<th>{key}</th>");
    }
    html.push_str("</tr>");
    let rows: [Metric<String>; 11] = [
        ("windows expected", |r| r.windows_expected.to_string()),
        ("windows committed", |r| r.windows_committed.to_string()),
        ("windows duplicated", |r| r.windows_duplicated.to_string()),
        ("windows lost", |r| r.windows_lost.to_string()),
        ("invariant violations", |r| r.invariant_violations.len().to_string()),
        ("freshness p99 (s)", |r| r.freshness_p99_secs.to_string()),
        ("spot losses", |r| r.spot_losses.to_string()),
        ("recovery p50 / p99 (s)", |r| format!("{} / {}", r.recovery_p50_secs, r.recovery_p99_secs)),
        ("node-hours on demand / spot", |r| format!("{:.1} / {:.1}", r.node_hours_on_demand, r.node_hours_spot)),
        ("cluster cost (USD)", |r| format!("{:.2}", r.cluster_cost_usd)),
        ("control plane (USD / month)", |r| format!("{:.2}", r.control_plane_cost_usd_month)),
    ];
    for (label, cell) in rows {
        let _ = write!(html, "<tr><th>{label}</th>");
        for r in reports.values() {
            let _ = write!(html, "<td>{}</td>", escape(&cell(r)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></body></html>\n");
    html
}
