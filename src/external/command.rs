//! The command line of one trial: W&B's `command` list with its macros expanded, and the
//! parameters in the forms W&B's agent passes them.
//!
//! - `${env}` → `/usr/bin/env`; `${interpreter}` → `python3` for a `.py` program (W&B
//!   writes `python`, which Debian does not install), dropped otherwise; `${program}`.
//! - `${args}` → one `--name=value` per top-level parameter; `${args_no_hyphens}` →
//!   `name=value`; `${args_json}` → one argument, the parameters as a JSON object;
//!   `${args_json_file}` → the path of a file holding that object.
//! - A nested parameter dictionary (`optimizer.lr`, `optimizer.kind`) is passed as one
//!   JSON object per top-level name (`--optimizer={"kind":"sgd","lr":0.01}`), as
//!   `wandb.config` would hold it. Booleans are `True`/`False`, as W&B's Python writes them.

use crate::space::{ParamValue, Params};
use serde_json::{Map, Value};
use std::path::Path;

/// The parameters as W&B's config holds them: dotted names nested into objects.
pub fn params_json(params: &Params) -> Map<String, Value> {
    let mut root = Map::new();
    for (name, value) in params {
        let mut node = &mut root;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), json_value(value));
            } else {
                let child = node
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !child.is_object() {
                    *child = Value::Object(Map::new());
                }
                node = child.as_object_mut().expect("made an object above");
            }
        }
    }
    root
}

fn json_value(v: &ParamValue) -> Value {
    match v {
        ParamValue::Int(i) => Value::from(*i),
        ParamValue::Float(f) => Value::from(*f),
        ParamValue::Bool(b) => Value::from(*b),
        ParamValue::Str(s) => Value::from(s.as_str()),
    }
}

/// A value on the command line: strings bare, booleans as Python writes them, objects as
/// compact JSON.
fn arg_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The argv of one trial. `params_file` is where `${args_json_file}` points (the caller
/// writes the object there).
pub fn argv(
    command: &[String],
    program: Option<&str>,
    params: &Params,
    params_file: &Path,
) -> Vec<String> {
    let json = params_json(params);
    let pairs: Vec<(String, String)> = json.iter().map(|(k, v)| (k.clone(), arg_text(v))).collect();
    let mut out = Vec::new();
    for arg in command {
        match arg.as_str() {
            "${args}" => out.extend(pairs.iter().map(|(k, v)| format!("--{k}={v}"))),
            "${args_no_hyphens}" => out.extend(pairs.iter().map(|(k, v)| format!("{k}={v}"))),
            "${interpreter}" => {
                if program.is_some_and(|p| p.ends_with(".py")) {
                    out.push("python3".into());
                }
            }
            _ => out.push(
                arg.replace("${env}", "/usr/bin/env")
                    .replace("${program}", program.unwrap_or_default())
                    .replace("${args_json_file}", &params_file.display().to_string())
                    .replace("${args_json}", &Value::Object(json.clone()).to_string()),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        let mut p = Params::new();
        p.insert("lr".into(), ParamValue::Float(0.01));
        p.insert("layers".into(), ParamValue::Int(3));
        p.insert("bn".into(), ParamValue::Bool(true));
        p.insert("opt.kind".into(), ParamValue::Str("sgd".into()));
        p.insert("opt.beta".into(), ParamValue::Float(0.9));
        p
    }

    #[test]
    fn every_macro_expands_as_wandb_passes_it() {
        let command: Vec<String> = [
            "${env}",
            "${interpreter}",
            "${program}",
            "${args}",
            "--cfg=${args_json_file}",
        ]
        .map(String::from)
        .to_vec();
        let argv = argv(
            &command,
            Some("train.py"),
            &params(),
            Path::new("/r/t/params.json"),
        );
        assert_eq!(
            argv,
            [
                "/usr/bin/env",
                "python3",
                "train.py",
                "--bn=True",
                "--layers=3",
                "--lr=0.01",
                "--opt={\"beta\":0.9,\"kind\":\"sgd\"}",
                "--cfg=/r/t/params.json"
            ]
        );
        let bare = super::argv(
            &[
                "./run".into(),
                "${args_no_hyphens}".into(),
                "${args_json}".into(),
            ],
            Some("run"),
            &params(),
            Path::new("p"),
        );
        assert_eq!(bare[1], "bn=True");
        let parsed: Value = serde_json::from_str(bare.last().unwrap()).unwrap();
        assert_eq!(parsed["opt"]["kind"], "sgd");
        assert_eq!(parsed["layers"], 3);
    }

    #[test]
    fn unknown_macros_are_found() {
        use crate::config::unknown_macro;
        assert_eq!(unknown_macro("--x=${args}"), None);
        assert_eq!(unknown_macro("${argz}").as_deref(), Some("${argz}"));
        assert_eq!(unknown_macro("a ${program} ${nope"), Some("${nope".into()));
    }
}
