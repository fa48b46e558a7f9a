//! The engine's side of the event stream: the types are the `mtv-events` crate (re-exported here,
//! so `mtv_engine::events::Event` keeps working), plus the sink that carries them over a channel.

pub use mtv_events::*;

/// An event sink over a channel; the receiving side drives the writers.
#[derive(Debug, Clone)]
pub struct ChannelSink(pub tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        // A closed receiver means the run is being torn down; events are then only informative.
        let _ = self.0.send(event);
    }
}
