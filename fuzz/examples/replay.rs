//! Prints what one input does: `cargo run --manifest-path fuzz/Cargo.toml --example
//! replay -- TARGET FILE`. For `controller` it prints the decoded steps and every
//! output; a failing invariant panics with its message after the trace so far.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(target), Some(file)) = (args.first(), args.get(1)) else {
        eprintln!("usage: replay <message_parse|digest_challenge|controller|stream_frame> <file>");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("replay: cannot read {file}: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "input ({} bytes): {:?}",
        bytes.len(),
        bytes.escape_ascii().to_string()
    );
    match target.as_str() {
        "message_parse" => trunkline_fuzz::message::run(&bytes),
        "stream_frame" => trunkline_fuzz::stream::run(&bytes),
        "digest_challenge" => trunkline_fuzz::digest::run(&bytes),
        "controller" => {
            let script = trunkline_fuzz::controller::Script::decode(&bytes);
            println!("config: {:?}", script.config);
            trunkline_fuzz::controller::World::replay(&script);
        }
        other => {
            eprintln!("replay: unknown target {other:?}");
            std::process::exit(2);
        }
    }
    println!("no invariant failed");
}
