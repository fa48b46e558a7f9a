//! Replays an event log on the console, at a readable pace, to look at the live view:
//! `cargo run -p mtv-report --example replay -- results/events.jsonl [--no-progress]`.

use std::io::BufReader;
use std::time::Duration;

use mtv_report::{Console, ConsoleMode, Reporter, parse_event_log};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: replay EVENTS.jsonl [--no-progress]")?;
    let no_progress = args.any(|arg| arg == "--no-progress");
    let events = parse_event_log(BufReader::new(std::fs::File::open(path)?))?;
    let mut console = Console::stdout(ConsoleMode::detect(no_progress));
    for event in &events {
        console.handle(event);
        std::thread::sleep(Duration::from_millis(150));
    }
    console.finish()?;
    Ok(())
}
