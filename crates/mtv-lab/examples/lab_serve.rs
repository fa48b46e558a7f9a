//! Runs the lab standalone, like `mtv-tests lab serve`: `cargo run -p mtv-lab --example lab_serve -- --port 8080`.

use clap::Parser;

#[derive(Parser)]
#[command(about = "Run the embedded MTV lab API server")]
struct Cli {
    #[command(flatten)]
    serve: mtv_lab::cli::LabServeArgs,
}

#[tokio::main]
async fn main() -> Result<(), mtv_lab::LabError> {
    mtv_lab::cli::serve(Cli::parse().serve).await
}
