//! Charts drawn on the server as SVG: no script, no web fonts. Every mark has a CSS class
//! (`chart-max`, `chart-min`, `chart-licensed`, `chart-overdraft`, `chart-use`, `chart-limit`,
//! `chart-axis`, `chart-grid`) for the stylesheet to theme (light and dark), and presentation
//! attributes as defaults so a chart reads without the stylesheet too: CSS rules override
//! presentation attributes. The numbers are in a data table beside the chart; the chart's
//! `<title>` (its accessible name: no ids, so a page may hold
//! several charts) and `<desc>` summarise it for screen readers.

use std::fmt::Write;

use chrono::NaiveDate;

use crate::domain::usage::{SeatDay, UseDay};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;
/// At most this many date labels under the x axis, so they never overlap.
const MAX_X_LABELS: usize = 6;

/// Escapes text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The value scale: from 0 to a round top with ticks every `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    top: i64,
    step: i64,
}

impl Scale {
    /// A step of 1, 2 or 5 × 10ⁿ giving at most five intervals, and a top at least `max`.
    fn for_max(max: i64) -> Scale {
        let max = max.max(1);
        let mut unit: i64 = 1;
        loop {
            for m in [1, 2, 5] {
                let step = unit.saturating_mul(m);
                if div_ceil(max, step) <= 5 || step == i64::MAX {
                    return Scale {
                        top: step.saturating_mul(div_ceil(max, step)),
                        step,
                    };
                }
            }
            unit = unit.saturating_mul(10);
        }
    }

    fn y(&self, value: i64) -> f64 {
        TOP + PLOT_H - PLOT_H * (value.max(0) as f64 / self.top as f64).min(1.0)
    }

    fn ticks(&self) -> impl Iterator<Item = i64> + '_ {
        (0..=self.top / self.step).map(|i| i * self.step)
    }
}

/// `a / b` rounded up, for positive values (`i64::div_ceil` is not stable).
fn div_ceil(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// The x extent of day `i` of `n`: each day is a slot of equal width.
fn slot(i: usize, n: usize) -> (f64, f64) {
    let w = PLOT_W / n as f64;
    (LEFT + w * i as f64, LEFT + w * (i + 1) as f64)
}

fn label(day: NaiveDate) -> String {
    day.format("%b %-d").to_string()
}

fn open(out: &mut String, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" role=\"img\" class=\"chart\" \
         font-family=\"system-ui, sans-serif\" font-size=\"11\"><title>{}</title><desc>{}</desc>",
        escape(title),
        escape(desc)
    );
}

/// The grid, the value labels and the date labels.
fn axes(out: &mut String, scale: Scale, days: &[NaiveDate]) {
    out.push_str("<g class=\"chart-grid\" stroke=\"#d0d0d0\" stroke-width=\"1\">");
    for tick in scale.ticks() {
        let y = scale.y(tick);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\"/>",
            LEFT + PLOT_W
        );
    }
    out.push_str("</g><g class=\"chart-axis\" fill=\"#555555\">");
    for tick in scale.ticks() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            LEFT - 6.0,
            scale.y(tick) + 4.0
        );
    }
    let n = days.len();
    let every = n.div_ceil(MAX_X_LABELS).max(1);
    for (i, day) in days.iter().enumerate() {
        // The last day is always labelled; a regular label too close to it is skipped.
        let last = i + 1 == n;
        if !(last || (i % every == 0 && n - 1 - i >= every.div_ceil(2).max(1))) {
            continue;
        }
        let (x0, x1) = slot(i, n);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            HEIGHT - 10.0,
            escape(&label(*day))
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#555555\"/></g>",
        TOP + PLOT_H,
        LEFT + PLOT_W
    );
}

/// A step line over the days' slots; days whose value is `None` break it.
fn step_path(out: &mut String, class: &str, stroke: &str, dashed: bool, values: &[Option<i64>], scale: Scale) {
    let n = values.len();
    let mut d = String::new();
    let mut drawing = false;
    for (i, value) in values.iter().enumerate() {
        let (x0, x1) = slot(i, n);
        match value {
            Some(v) => {
                let y = scale.y(*v);
                if drawing {
                    let _ = write!(d, " V{y:.1} H{x1:.1}");
                } else {
                    let _ = write!(d, "M{x0:.1} {y:.1} H{x1:.1}");
                    drawing = true;
                }
            }
            None => drawing = false,
        }
    }
    if d.is_empty() {
        return;
    }
    let dash = if dashed { " stroke-dasharray=\"6 4\"" } else { "" };
    let _ = write!(
        out,
        "<path class=\"{class}\" d=\"{d}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\"{dash}/>"
    );
}

fn empty(title: &str, what: &str) -> String {
    let mut out = String::new();
    open(&mut out, title, &format!("No {what} in this period."));
    let _ = write!(
        out,
        "<text class=\"chart-axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555555\">No data</text></svg>",
        WIDTH / 2.0,
        HEIGHT / 2.0
    );
    out
}

/// Seats in use per day: the day's most (`chart-max`) and fewest (`chart-min`) as step lines,
/// the seat count (`chart-licensed`) and the overdraft ceiling (`chart-overdraft`, where the
/// overdraft is limited) as dashed reference lines.
pub fn seats_svg(title: &str, days: &[SeatDay]) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return empty(title, "seat data");
    };
    let ceiling = |d: &SeatDay| d.overdraft.map(|o| d.licensed.saturating_add(o));
    let top = days
        .iter()
        .map(|d| d.seats_max.max(d.licensed).max(ceiling(d).unwrap_or(0)))
        .max()
        .unwrap_or(0);
    let scale = Scale::for_max(top);
    let peak = days.iter().max_by_key(|d| d.seats_max).unwrap_or(first);
    let desc = format!(
        "Seats in use per day from {} to {}: at most {} (on {}), {} at the end; {} seats licensed{}.",
        first.day,
        last.day,
        peak.seats_max,
        peak.day,
        last.seats_end,
        last.licensed,
        match last.overdraft {
            Some(0) => String::new(),
            Some(o) => format!(", up to {} with overdraft", last.licensed.saturating_add(o)),
            None => ", unlimited overdraft".into(),
        }
    );
    let mut out = String::new();
    open(&mut out, title, &desc);
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    axes(&mut out, scale, &dates);
    let overdraft: Vec<Option<i64>> = days.iter().map(|d| ceiling(d).filter(|c| *c > d.licensed)).collect();
    step_path(&mut out, "chart-overdraft", "#c0392b", true, &overdraft, scale);
    let licensed: Vec<Option<i64>> = days.iter().map(|d| Some(d.licensed)).collect();
    step_path(&mut out, "chart-licensed", "#7f8c8d", true, &licensed, scale);
    let min: Vec<Option<i64>> = days.iter().map(|d| Some(d.seats_min)).collect();
    step_path(&mut out, "chart-min", "#5dade2", false, &min, scale);
    let max: Vec<Option<i64>> = days.iter().map(|d| Some(d.seats_max)).collect();
    step_path(&mut out, "chart-max", "#1f5f99", false, &max, scale);
    out.push_str("</svg>");
    out
}

/// A metered feature's use per day as bars (`chart-use`), against its limit (`chart-limit`)
/// and the limit with overdraft (`chart-overdraft`) as dashed lines.
pub fn usage_svg(title: &str, days: &[UseDay], limit: Option<i64>, overdraft: i64) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return empty(title, "usage");
    };
    let ceiling = limit.map(|l| l.saturating_add(overdraft.max(0)));
    let most = days.iter().map(|d| d.used).max().unwrap_or(0);
    let scale = Scale::for_max(most.max(ceiling.unwrap_or(0)));
    let total: i64 = days.iter().map(|d| d.used).fold(0, i64::saturating_add);
    let peak = days.iter().max_by_key(|d| d.used).unwrap_or(first);
    let desc = format!(
        "Use per day from {} to {}: {} in total, at most {} (on {}); {}.",
        first.day,
        last.day,
        total,
        peak.used,
        peak.day,
        match (limit, ceiling) {
            (Some(l), Some(c)) if c > l => format!("the limit is {l}, {c} with overdraft"),
            (Some(l), _) => format!("the limit is {l}"),
            (None, _) => "no limit".into(),
        }
    );
    let mut out = String::new();
    open(&mut out, title, &desc);
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    axes(&mut out, scale, &dates);
    out.push_str("<g class=\"chart-use\" fill=\"#1f5f99\">");
    let n = days.len();
    for (i, day) in days.iter().enumerate().filter(|(_, d)| d.used > 0) {
        let (x0, x1) = slot(i, n);
        let gap = ((x1 - x0) * 0.15).min(4.0);
        let y = scale.y(day.used);
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
            x0 + gap,
            (x1 - x0 - 2.0 * gap).max(0.5),
            TOP + PLOT_H - y,
            day.day,
            day.used
        );
    }
    out.push_str("</g>");
    let line = |out: &mut String, class: &str, stroke: &str, value: i64| {
        let y = scale.y(value);
        let _ = write!(
            out,
            "<line class=\"{class}\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{stroke}\" \
             stroke-width=\"2\" stroke-dasharray=\"6 4\"/>",
            LEFT + PLOT_W
        );
    };
    if let (Some(l), Some(c)) = (limit, ceiling) {
        if c > l {
            line(&mut out, "chart-overdraft", "#c0392b", c);
        }
        line(&mut out, "chart-limit", "#7f8c8d", l);
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A small well-formedness check: tags nest and close, attributes are quoted, and text
    /// holds no raw `<` or stray `&`.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        assert!(svg.starts_with("<svg "), "{svg}");
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = rest[start..].find('>').expect("a closed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "tag {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "in {svg}");
            } else {
                let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
                check_attributes(tag);
                if !tag.ends_with('/') {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[end + 1..];
            if stack.is_empty() {
                assert_eq!(rest, "", "content after the root element");
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn check_text(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&entity),
                "stray & in {text:?}"
            );
        }
    }

    fn check_attributes(tag: &str) {
        let quotes = tag.matches('"').count();
        assert_eq!(quotes % 2, 0, "unbalanced quotes in <{tag}>");
        // Attribute values are between quote pairs.
        for (i, value) in tag.split('"').enumerate() {
            if i % 2 == 1 {
                assert!(!value.contains('<'), "< in an attribute of <{tag}>");
                check_text(value);
            }
        }
    }

    fn seat(day: &str, min: i64, max: i64, licensed: i64, overdraft: Option<i64>) -> SeatDay {
        SeatDay {
            day: d(day),
            seats_min: min,
            seats_max: max,
            seats_end: min,
            licensed,
            overdraft,
        }
    }

    /// The y coordinates a path visits.
    fn path_ys(svg: &str, class: &str) -> Vec<f64> {
        let start = svg
            .find(&format!("<path class=\"{class}\" d=\""))
            .unwrap_or_else(|| panic!("no {class} in {svg}"));
        let d = &svg[start..].split('"').nth(3).unwrap();
        let mut ys = Vec::new();
        let mut tokens = d.split_whitespace();
        while let Some(token) = tokens.next() {
            if let Some(v) = token.strip_prefix('V') {
                ys.push(v.parse().unwrap());
            } else if token.starts_with('M') {
                ys.push(tokens.next().unwrap().parse().unwrap());
            }
        }
        ys
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(Scale::for_max(0), Scale { top: 1, step: 1 });
        assert_eq!(Scale::for_max(5), Scale { top: 5, step: 1 });
        assert_eq!(Scale::for_max(7), Scale { top: 8, step: 2 });
        assert_eq!(Scale::for_max(110), Scale { top: 150, step: 50 });
        assert_eq!(
            Scale::for_max(1_000_000_000),
            Scale {
                top: 1_000_000_000,
                step: 200_000_000
            }
        );
        let s = Scale::for_max(10);
        assert_eq!(s.y(0), TOP + PLOT_H);
        assert_eq!(s.y(10), TOP);
        assert_eq!(s.y(5), TOP + PLOT_H / 2.0);
    }

    #[test]
    fn seats_chart_places_values_and_reference_lines() {
        let days = [
            seat("2024-01-01", 1, 1, 5, Some(5)),
            seat("2024-01-02", 1, 4, 5, Some(5)),
            seat("2024-01-03", 2, 3, 5, Some(5)),
        ];
        let svg = seats_svg("Seats", &days);
        assert_well_formed(&svg);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title>Seats</title><desc>"));
        assert!(svg.contains("at most 4 (on 2024-01-02)"), "{svg}");
        assert!(svg.contains("up to 10 with overdraft"), "{svg}");
        assert!(!svg.contains("<script"));
        // The overdraft ceiling (10) is the top; ticks every 2.
        let scale = Scale { top: 10, step: 2 };
        assert_eq!(Scale::for_max(10), scale);
        let y = |v: i64| (scale.y(v) * 10.0).round() / 10.0;
        assert_eq!(path_ys(&svg, "chart-max"), [y(1), y(4), y(3)]);
        assert_eq!(path_ys(&svg, "chart-min"), [y(1), y(1), y(2)]);
        assert_eq!(path_ys(&svg, "chart-licensed"), [y(5), y(5), y(5)]);
        assert_eq!(path_ys(&svg, "chart-overdraft"), [y(10), y(10), y(10)]);
        for class in ["chart-grid", "chart-axis"] {
            assert!(svg.contains(&format!("class=\"{class}\"")), "{class}");
        }
        // Presentation defaults, for a page without the stylesheet.
        assert!(svg.contains("class=\"chart-max\"") && svg.contains("stroke=\"#1f5f99\""));
        for label in ["Jan 1", "Jan 3", ">10<", ">0<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        // Day slots: the first starts at the plot's left edge, the last ends at its right edge.
        assert!(svg.contains(&format!("M{LEFT:.1} ")));
        assert!(svg.contains(&format!("H{:.1}\"", LEFT + PLOT_W)));
    }

    #[test]
    fn unlimited_or_no_overdraft_draws_no_ceiling() {
        let svg = seats_svg("Seats", &[seat("2024-01-01", 0, 2, 3, None)]);
        assert_well_formed(&svg);
        assert!(!svg.contains("chart-overdraft"));
        assert!(svg.contains("unlimited overdraft"));
        let svg = seats_svg("Seats", &[seat("2024-01-01", 0, 2, 3, Some(0))]);
        assert!(!svg.contains("chart-overdraft"));
    }

    #[test]
    fn usage_chart_draws_bars_and_limits() {
        let days = [
            UseDay {
                day: d("2024-01-01"),
                used: 0,
            },
            UseDay {
                day: d("2024-01-02"),
                used: 60,
            },
        ];
        let svg = usage_svg("Renders", &days, Some(100), 10);
        assert_well_formed(&svg);
        let scale = Scale::for_max(110);
        // One bar: the empty day draws none.
        assert_eq!(svg.matches("<rect ").count(), 1);
        assert!(svg.contains(&format!("y=\"{:.1}\"", scale.y(60))));
        assert!(svg.contains(&format!("height=\"{:.1}\"", TOP + PLOT_H - scale.y(60))));
        assert!(svg.contains("<title>2024-01-02: 60</title>"));
        assert!(svg.contains(&format!(
            "class=\"chart-limit\" x1=\"{LEFT}\" y1=\"{:.1}\"",
            scale.y(100)
        )));
        assert!(svg.contains(&format!(
            "class=\"chart-overdraft\" x1=\"{LEFT}\" y1=\"{:.1}\"",
            scale.y(110)
        )));
        assert!(svg.contains("60 in total"));
        let unlimited = usage_svg("Renders", &days, None, 0);
        assert_well_formed(&unlimited);
        assert!(!unlimited.contains("chart-limit") && unlimited.contains("no limit"));
    }

    #[test]
    fn empty_series_say_so() {
        for svg in [seats_svg("Seats", &[]), usage_svg("Use", &[], Some(3), 0)] {
            assert_well_formed(&svg);
            assert!(svg.contains("role=\"img\"") && svg.contains("No data") && svg.contains("<desc"));
        }
    }

    #[test]
    fn text_is_escaped() {
        let svg = seats_svg("<b>\"Tom & Jerry's\"</b>\u{7}", &[seat("2024-01-01", 0, 0, 1, Some(0))]);
        assert_well_formed(&svg);
        assert!(svg.contains("&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;</title>"));
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
    }

    #[test]
    fn long_ranges_label_few_dates() {
        let start = d("2024-01-01");
        let days: Vec<SeatDay> = (0..90)
            .map(|i| SeatDay {
                day: start + chrono::Days::new(i),
                seats_min: 0,
                seats_max: 1,
                seats_end: 0,
                licensed: 1,
                overdraft: Some(0),
            })
            .collect();
        let svg = seats_svg("Seats", &days);
        assert_well_formed(&svg);
        let labels = svg.matches("text-anchor=\"middle\"").count();
        assert!((2..=MAX_X_LABELS + 1).contains(&labels), "{labels} labels");
        assert!(
            svg.contains(&format!(">{}<", label(days[89].day))),
            "the last day is labelled"
        );
    }
}
