//! skewless's serving evaluator embedded in your own process: load a fitted
//! artifact once, then turn rows into features with no server in between.
//! (For HTTP, run `skewless serve ARTIFACT`; see docs/server.md.)
//!
//! ```sh
//! bash examples/wide_deep.sh     # writes target/wide_deep/census_wide_deep.json
//! cargo run --example embed -- target/wide_deep/census_wide_deep.json
//! ```

use skewless::serving::{Evaluator, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let artifact = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/wide_deep/census_wide_deep.json".to_string());
    // Load, verify and compile once; share it across threads (`Send + Sync`,
    // evaluation takes `&self`).
    let evaluator = Evaluator::load(artifact.as_ref())?;
    let names: Vec<&str> = evaluator
        .outputs()
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    println!("{} features: {}", names.len(), names.join(", "));

    // A request as JSON text: the features as one JSON object.
    let line = r#"{"age": 39, "education": "Bachelors", "gender": "Male", "hours_per_week": 40}"#;
    let json = evaluator.eval_json(line)?;
    println!("{json}");

    // The same request as a typed row (no JSON, no allocation per numeric
    // feature): inputs by position, the rest NULL.
    let mut row = evaluator.empty_row();
    for (name, value) in [
        ("age", Value::Int(39)),
        ("education", Value::Str("Bachelors".into())),
        ("gender", Value::Str("Male".into())),
        ("hours_per_week", Value::Int(40)),
    ] {
        if let Some(i) = evaluator.input_index(name) {
            row[i] = value;
        }
    }
    let mut features = Vec::new();
    evaluator.eval(&row, &mut features)?;
    let mut text = String::new();
    evaluator.write_json(&features, &mut text);
    // One kernel per function: both paths give the same bytes.
    assert_eq!(text, json);
    println!("typed row: the same {} values", features.len());
    Ok(())
}
