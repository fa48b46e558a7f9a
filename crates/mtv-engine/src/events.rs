//! The engine's side of the event stream: the types are the `mtv-events` crate (re-exported here,
//! so `mtv_engine::events::Event` keeps working), the sink that carries them over a channel,
//! and the reading of a Plan's pipeline into each VM's timeline.

pub use mtv_events::*;

use std::time::Duration;

/// An event sink over a channel; the receiving side drives the writers.
#[derive(Debug, Clone)]
pub struct ChannelSink(pub tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        // A closed receiver means the run is being torn down; events are then only informative.
        let _ = self.0.send(event);
    }
}

/// Each VM's pipeline of a Plan as [`Event::VmTimeline`] data: `(vm, phases)`, with every start
/// measured from the earliest step start of any VM of the Plan, so one Plan's VMs share an axis.
/// VMs whose pipeline Forklift has not written yet are left out.
pub fn vm_timelines(plan: &serde_json::Value) -> Vec<(String, Vec<PipelinePhase>)> {
    use mtv_api::time::parse_rfc3339;
    let vms = plan
        .pointer("/status/migration/vms")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let at = |step: &serde_json::Value, field: &str| step[field].as_str().and_then(parse_rfc3339);
    let origin = vms
        .iter()
        .filter_map(|vm| vm["pipeline"].as_array())
        .flatten()
        .filter_map(|step| at(step, "started"))
        .min();
    let since = |from: i64, to: i64| Duration::from_secs(u64::try_from(to - from).unwrap_or(0));
    vms.iter()
        .filter_map(|vm| {
            let pipeline = vm["pipeline"].as_array().filter(|p| !p.is_empty())?;
            let name = vm["name"].as_str().or_else(|| vm["id"].as_str())?;
            let phases = pipeline
                .iter()
                .map(|step| {
                    let started = at(step, "started");
                    PipelinePhase {
                        name: step["name"].as_str().unwrap_or("?").to_string(),
                        start: started.zip(origin).map(|(s, o)| since(o, s)),
                        duration: started.zip(at(step, "completed")).map(|(s, c)| since(s, c)),
                        error: pipeline_error(step),
                    }
                })
                .collect();
            Some((name.to_string(), phases))
        })
        .collect()
}

/// A pipeline step's error reasons, joined (`error: {phase, reasons: [...]}`).
fn pipeline_error(step: &serde_json::Value) -> Option<String> {
    let reasons: Vec<&str> = step["error"]["reasons"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_share_the_plans_axis_and_keep_errors() {
        let plan = serde_json::json!({"status": {"migration": {"vms": [
            {"name": "web", "pipeline": [
                {"name": "Initialize", "started": "2026-12-04T10:00:00Z", "completed": "2026-12-04T10:00:02Z"},
                {"name": "DiskTransfer", "started": "2026-12-04T10:00:02Z", "completed": "2026-12-04T10:01:00Z"},
                {"name": "ImageConversion", "started": "2026-12-04T10:01:00Z",
                 "error": {"phase": "ImageConversion", "reasons": ["virt-v2v failed", "exit 1"]}},
                {"name": "VirtualMachineCreation"}
            ]},
            {"name": "db", "pipeline": [
                {"name": "Initialize", "started": "2026-12-04T10:00:05Z", "completed": "2026-12-04T10:00:06Z"}
            ]},
            {"name": "late"}
        ]}}});
        let timelines = vm_timelines(&plan);
        assert_eq!(timelines.len(), 2, "a VM without a pipeline is left out");
        let (vm, web) = &timelines[0];
        assert_eq!(vm, "web");
        assert_eq!(web[1].start, Some(Duration::from_secs(2)));
        assert_eq!(web[1].duration, Some(Duration::from_secs(58)));
        assert_eq!(web[2].duration, None);
        assert_eq!(web[2].error.as_deref(), Some("virt-v2v failed; exit 1"));
        assert_eq!(web[3].start, None);
        assert_eq!(timelines[1].1[0].start, Some(Duration::from_secs(5)));
    }
}
