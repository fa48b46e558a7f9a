//! Where a migration's time went, drawn for the HTML report: one inline SVG per migrate step with a
//! row per VM and a bar per pipeline step (start and length from the Plan's status), a shared time
//! axis, and a legend with each step's seconds. Plain SVG: no script, nothing fetched; every bar has
//! a `<title>` so a browser shows its numbers on hover.

use std::io::{self, Write};
use std::time::Duration;

use mtv_events::PipelinePhase;

use crate::html::esc;

/// One VM's pipeline as the report keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    pub plan: String,
    pub vm: String,
    pub phases: Vec<PipelinePhase>,
}

const LABEL_WIDTH: f64 = 180.0;
const BARS_WIDTH: f64 = 560.0;
const ROW_HEIGHT: f64 = 22.0;
/// Characters of a VM name that fit [`LABEL_WIDTH`] at 12px.
const LABEL_CHARS: usize = 26;
const AXIS_HEIGHT: f64 = 20.0;
/// A step shorter than a pixel (sub-second on a fast lab) still shows as a sliver.
const MIN_BAR: f64 = 2.0;
/// A failed step is what the reader looks for: wide enough to see and to hover, even when the
/// status gives it no length (it failed the second it started).
const MIN_FAILED_BAR: f64 = 8.0;

/// Colours for Forklift's pipeline steps, in the order they usually run; others take one by hash.
const PALETTE: [(&str, &str); 12] = [
    ("Initialize", "#8c959f"),
    ("PreHook", "#bf8700"),
    ("PreflightInspection", "#6639ba"),
    ("DiskAllocation", "#0969da"),
    ("DiskTransfer", "#1f883d"),
    ("DiskTransferV2v", "#1a7f37"),
    ("Cutover", "#e16f24"),
    ("ImageConversion", "#8250df"),
    ("ConvertOpenstackSnapshot", "#953800"),
    ("VirtualMachineCreation", "#0550ae"),
    ("WaitForGuestReboots", "#57606a"),
    ("PostHook", "#9a6700"),
];
const OTHER_COLOURS: [&str; 4] = ["#116329", "#a40e26", "#3e1f79", "#0a3069"];
const FAILED: &str = "#d1242f";

fn colour(name: &str) -> &'static str {
    PALETTE
        .iter()
        .find(|(step, _)| *step == name)
        .map(|(_, colour)| *colour)
        .unwrap_or_else(|| {
            let sum: usize = name.bytes().map(usize::from).sum();
            OTHER_COLOURS[sum % OTHER_COLOURS.len()]
        })
}

/// The end of the axis: the latest end of any step, at least one second.
fn span(timelines: &[Timeline]) -> f64 {
    timelines
        .iter()
        .flat_map(|t| &t.phases)
        .filter_map(|p| Some(p.start?.as_secs_f64() + p.duration.unwrap_or_default().as_secs_f64()))
        .fold(1.0, f64::max)
}

fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 120.0 {
        format!("{}m{:02}s", (secs / 60.0).floor(), (secs % 60.0).round())
    } else {
        format!("{secs:.0}s")
    }
}

/// A tick's time: up to hundredths on a short axis (a fast lab: a quarter of 1 s is 0.25s, not a
/// rounded 0.2s), else as [`seconds`].
fn tick(at: f64, span: f64) -> String {
    if span < 10.0 {
        let text = format!("{at:.2}");
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    } else {
        seconds(Duration::from_secs_f64(at))
    }
}

/// A VM name that fits the label column: its end (where generated names differ) after an ellipsis.
fn label(vm: &str) -> String {
    let chars: Vec<char> = vm.chars().collect();
    if chars.len() <= LABEL_CHARS {
        vm.to_string()
    } else {
        let tail: String = chars[chars.len() - (LABEL_CHARS - 1)..].iter().collect();
        format!("…{tail}")
    }
}

/// The SVG of the VMs of one step (nothing when no VM has a started step).
pub(crate) fn write_svg(out: &mut impl Write, timelines: &[Timeline]) -> io::Result<()> {
    if !timelines
        .iter()
        .flat_map(|t| &t.phases)
        .any(|p| p.start.is_some())
    {
        return Ok(());
    }
    let span = span(timelines);
    let width = LABEL_WIDTH + BARS_WIDTH + 10.0;
    let height = AXIS_HEIGHT + ROW_HEIGHT * timelines.len() as f64 + 4.0;
    write!(
        out,
        "<figure class=\"timeline\"><svg role=\"img\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\" font-size=\"12\"><title>Pipeline timeline: where each VM's \
         migration time went</title>"
    )?;
    axis(out, span, height)?;
    for (row, timeline) in timelines.iter().enumerate() {
        vm_row(out, timeline, row, span)?;
    }
    write!(out, "</svg>")?;
    legend(out, timelines)?;
    write!(out, "</figure>")
}

/// Ticks at 0, ¼, ½, ¾ and the end of the span, with their times.
fn axis(out: &mut impl Write, span: f64, height: f64) -> io::Result<()> {
    for quarter in 0..=4 {
        let at = span * f64::from(quarter) / 4.0;
        let x = LABEL_WIDTH + BARS_WIDTH * f64::from(quarter) / 4.0;
        let anchor = if quarter == 4 { "end" } else { "start" };
        write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{AXIS_HEIGHT}\" x2=\"{x:.1}\" y2=\"{height}\" stroke=\"#d0d7de\"/>\
             <text x=\"{x:.1}\" y=\"14\" fill=\"#59636e\" text-anchor=\"{anchor}\">{}</text>",
            tick(at, span)
        )?;
    }
    Ok(())
}

fn vm_row(out: &mut impl Write, timeline: &Timeline, row: usize, span: f64) -> io::Result<()> {
    let y = AXIS_HEIGHT + ROW_HEIGHT * row as f64;
    write!(
        out,
        "<text x=\"0\" y=\"{:.1}\" fill=\"#1f2328\"><title>{} (Plan {})</title>{}</text>",
        y + 15.0,
        esc(&timeline.vm),
        esc(&timeline.plan),
        esc(&label(&timeline.vm))
    )?;
    let scale = BARS_WIDTH / span;
    for phase in &timeline.phases {
        let Some(start) = phase.start else { continue };
        let x = LABEL_WIDTH + start.as_secs_f64() * scale;
        // A step that never completed (running when the migration ended, or failed) runs to the end.
        let length = phase
            .duration
            .map_or(span - start.as_secs_f64(), |d| d.as_secs_f64());
        let min_bar = if phase.error.is_some() {
            MIN_FAILED_BAR
        } else {
            MIN_BAR
        };
        let bar = (length * scale).max(min_bar);
        // A sliver at the end of the axis is drawn inside it, ending where the axis ends.
        let x = x.min(LABEL_WIDTH + BARS_WIDTH - bar);
        let fill = if phase.error.is_some() {
            FAILED
        } else {
            colour(&phase.name)
        };
        let what = match (&phase.duration, &phase.error) {
            (_, Some(error)) => format!("failed: {error}"),
            (Some(d), None) => seconds(*d),
            (None, None) => "did not finish".to_string(),
        };
        write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{fill}\">\
             <title>{} {}: {} (from {})</title></rect>",
            y + 3.0,
            ROW_HEIGHT - 6.0,
            esc(&timeline.vm),
            esc(&phase.name),
            esc(&what),
            seconds(start)
        )?;
        if bar > 7.5 * phase.name.len() as f64 {
            write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#fff\" font-size=\"11\">{}</text>",
                x + 4.0,
                y + 15.0,
                esc(&phase.name)
            )?;
        }
    }
    Ok(())
}

/// Each step's colour and, per VM, its seconds: the numbers behind the bars.
fn legend(out: &mut impl Write, timelines: &[Timeline]) -> io::Result<()> {
    write!(out, "<figcaption>")?;
    for timeline in timelines {
        write!(out, "<div><code>{}</code>:", esc(&timeline.vm))?;
        for phase in timeline.phases.iter().filter(|p| p.start.is_some()) {
            let fill = if phase.error.is_some() {
                FAILED
            } else {
                colour(&phase.name)
            };
            let time = phase.duration.map_or_else(|| "…".to_string(), seconds);
            write!(
                out,
                " <span class=\"phase\"><i style=\"background:{fill}\"></i>{} {time}</span>",
                esc(&phase.name)
            )?;
        }
        write!(out, "</div>")?;
    }
    write!(out, "</figcaption>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, start: u64, duration: Option<u64>, error: Option<&str>) -> PipelinePhase {
        PipelinePhase {
            name: name.into(),
            start: Some(Duration::from_secs(start)),
            duration: duration.map(Duration::from_secs),
            error: error.map(str::to_string),
        }
    }

    fn svg(timelines: &[Timeline]) -> String {
        let mut out = Vec::new();
        write_svg(&mut out, timelines).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bars_are_placed_on_the_shared_axis_and_a_failure_is_red() {
        let text = svg(&[
            Timeline {
                plan: "p".into(),
                vm: "web".into(),
                phases: vec![
                    phase("Initialize", 0, Some(10), None),
                    phase("DiskTransfer", 10, Some(30), None),
                ],
            },
            Timeline {
                plan: "p".into(),
                vm: "db<1>".into(),
                phases: vec![phase("ImageConversion", 20, None, Some("virt-v2v failed"))],
            },
        ]);
        // The span is 40 s over 560 px: DiskTransfer starts at 180 + 140 and is 420 wide.
        assert!(
            text.contains("<rect x=\"320.0\" y=\"23.0\" width=\"420.0\""),
            "{text}"
        );
        // The failed step never completed: it runs to the end of the axis, in red.
        assert!(
            text.contains("<rect x=\"460.0\" y=\"45.0\" width=\"280.0\" height=\"16.0\" rx=\"2\" fill=\"#d1242f\">"),
            "{text}"
        );
        assert!(text.contains("db&lt;1&gt; ImageConversion: failed: virt-v2v failed (from 20s)"));
        assert!(text.contains("DiskTransfer 30s"));
        assert!(!text.contains("<script"));
    }

    #[test]
    fn a_failed_step_without_length_at_the_end_is_seen_inside_the_axis() {
        // A fast lab: Initialize took the whole second, ImageConversion failed as it began.
        let text = svg(&[Timeline {
            plan: "p".into(),
            vm: "web".into(),
            phases: vec![
                phase("Initialize", 0, Some(1), None),
                phase("ImageConversion", 1, Some(0), Some("virt-v2v failed")),
            ],
        }]);
        // The axis ends at 180 + 560 = 740: the red bar is 8 wide and ends there.
        assert!(
            text.contains("<rect x=\"732.0\" y=\"23.0\" width=\"8.0\" height=\"16.0\" rx=\"2\" fill=\"#d1242f\">"),
            "{text}"
        );
    }

    #[test]
    fn long_vm_names_keep_their_distinct_end() {
        assert_eq!(label("web"), "web");
        let long = "auto-3d6v-mtv-tests-rhel8-ceph-rbd-cold-s2yx";
        assert_eq!(label(long), "…-rhel8-ceph-rbd-cold-s2yx");
        assert_eq!(label(long).chars().count(), LABEL_CHARS);
        assert_eq!(tick(0.25, 1.0), "0.25s");
        assert_eq!(tick(0.5, 1.0), "0.5s");
        assert_eq!(tick(0.0, 1.0), "0s");
        assert_eq!(tick(3.0, 4.0), "3s");
        assert_eq!(tick(150.0, 300.0), "2m30s");
    }

    #[test]
    fn nothing_is_drawn_without_a_started_step() {
        let timelines = [Timeline {
            plan: "p".into(),
            vm: "web".into(),
            phases: vec![PipelinePhase {
                name: "Initialize".into(),
                start: None,
                duration: None,
                error: None,
            }],
        }];
        assert_eq!(svg(&timelines), "");
    }
}
