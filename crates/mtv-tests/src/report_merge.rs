//! `mtv-tests report merge DIR... [-o OUT]`: the results of partitioned runs (`--partition K/N`),
//! one directory each, as the results of one run: one `junit.xml`, `report.html`, `rerun.json` and
//! `events.jsonl`, with the failed steps' diagnostics bundles copied alongside.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use miette::{Report, miette};
use mtv_engine::events::{Event, StepEnd};
use mtv_report::{
    EventLog, Fanout, HtmlReport, JunitReport, PartitionLog, Reporter, RerunReport, RerunState,
    Summary, merge_event_logs, parse_event_log, union_rerun_states,
};

use crate::cli::ReportMergeArgs;

/// Reads every partition, merges, writes the reports into `--output`; the exit code is the merged
/// run's (0 all passed, 1 a test failed, 3 leftovers, 130/143/129 interrupted).
pub fn merge_command(args: &ReportMergeArgs) -> Result<u8, Report> {
    for dir in &args.dirs {
        if same_dir(dir, &args.output) {
            return Err(miette!(
                help = "write the merged results elsewhere with -o DIR",
                "the output {} is also an input: merging would overwrite a partition's results",
                args.output.display()
            ));
        }
    }
    let mut parts = Vec::new();
    let mut rerun_states = Vec::new();
    for dir in &args.dirs {
        parts.push(read_partition(dir)?);
        // A partition whose run started no session wrote no rerun state; nothing to carry over.
        if let Ok(state) = RerunState::read(&dir.join("rerun.json")) {
            rerun_states.push(state);
        }
    }
    let mut events = merge_event_logs(&parts).map_err(|e| miette!("report merge: {e}"))?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| miette!("cannot create {}: {e}", args.output.display()))?;
    for (dir, part) in args.dirs.iter().zip(&parts) {
        copy_bundles(dir, &part.events, &args.output, &mut events)?;
    }
    write_reports(&args.output, &events, union_rerun_states(&rerun_states))?;
    let summary = Summary::from_events(&events);
    println!(
        "merged {} partitions into {}: {}",
        parts.len(),
        args.output.display(),
        summary.counts_line()
    );
    Ok(summary.exit_code())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// One partition's event log, labelled with its directory.
fn read_partition(dir: &Path) -> Result<PartitionLog, Report> {
    let path = dir.join("events.jsonl");
    let file = File::open(&path).map_err(|e| {
        miette!(
            help = "pass the --results directory of each partition's `mtv-tests run`",
            "cannot read {}: {e}",
            path.display()
        )
    })?;
    let events =
        parse_event_log(BufReader::new(file)).map_err(|e| miette!("{}: {e}", path.display()))?;
    Ok(PartitionLog {
        label: dir.display().to_string(),
        events,
    })
}

/// Copies the diagnostics bundles the partition in `dir` wrote into `output` and points the merged
/// events at the copies. A bundle that is not in `dir` any more keeps its original path.
fn copy_bundles(
    dir: &Path,
    partition_events: &[Event],
    output: &Path,
    merged: &mut [Event],
) -> Result<(), Report> {
    for event in partition_events {
        let Event::StepFinished(StepEnd {
            id,
            diagnostics: Some(bundle),
            ..
        }) = event
        else {
            continue;
        };
        let Some(name) = Path::new(bundle).file_name() else {
            continue;
        };
        let source = dir.join(name);
        if !source.is_dir() {
            continue;
        }
        let target = output.join(name);
        copy_tree(&source, &target).map_err(|e| {
            miette!(
                "cannot copy {} to {}: {e}",
                source.display(),
                target.display()
            )
        })?;
        for merged_event in merged.iter_mut() {
            if let Event::StepFinished(StepEnd {
                id: merged_id,
                diagnostics,
                ..
            }) = merged_event
                && merged_id == id
            {
                *diagnostics = Some(target.display().to_string());
            }
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let destination: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &destination)?;
        } else {
            std::fs::copy(entry.path(), destination)?;
        }
    }
    Ok(())
}

/// The four files a run writes, from the merged stream.
fn write_reports(
    output: &Path,
    events: &[Event],
    previous: Option<RerunState>,
) -> Result<(), Report> {
    let event_log = EventLog::create(output.join("events.jsonl")).map_err(|e| miette!("{e}"))?;
    let mut fanout = Fanout::new()
        .with(JunitReport::new(output.join("junit.xml")))
        .with(event_log)
        .with(RerunReport::with_previous(
            output.join("rerun.json"),
            previous,
        ))
        .with(HtmlReport::new(output.join("report.html")));
    for event in events {
        fanout.handle(event);
    }
    fanout.finish().map_err(|e| miette!("{e}"))
}
