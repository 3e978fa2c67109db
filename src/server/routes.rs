//! Paths to handlers: TensorFlow Serving / KServe v1 REST, the Open
//! Inference Protocol (v2), the native NDJSON endpoint, health and metrics.
//! Every handler answers a body of JSON; an error is `{"error": "…"}`.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::Value as Json;

use super::json::{check_shape, v2_accepts, v2_datatype};
use super::models::{Model, Version};
use super::{Reply, Shared};
use crate::serving::{Evaluator, InstancesAnswer, write_json, write_json_string};

/// What a path asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Route<'a> {
    Live,
    Ready,
    Metrics,
    ServerMetadata,
    /// A model's route: the model, the version asked for, what is asked.
    Model {
        name: &'a str,
        version: Option<&'a str>,
        action: Action,
    },
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    V1Status,
    V1Metadata,
    /// Live skew: the validate report of the recent served rows.
    V1Validation,
    V1Predict,
    /// The native endpoint: NDJSON in, `skewless eval`'s lines out.
    Eval,
    /// Events pushed into a model's window state.
    Events,
    V2Metadata,
    V2Ready,
    V2Infer,
}

impl Route<'_> {
    /// The route's label in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Live => "v2_health_live",
            Route::Ready => "v2_health_ready",
            Route::Metrics => "metrics",
            Route::ServerMetadata => "v2_server_metadata",
            Route::NotFound => "not_found",
            Route::Model { action, .. } => match action {
                Action::V1Status => "v1_status",
                Action::V1Metadata => "v1_metadata",
                Action::V1Validation => "v1_validation",
                Action::V1Predict => "v1_predict",
                Action::Eval => "eval",
                Action::Events => "v1_events",
                Action::V2Metadata => "v2_metadata",
                Action::V2Ready => "v2_ready",
                Action::V2Infer => "v2_infer",
            },
        }
    }

    /// The method the route takes.
    pub fn method(&self) -> Method {
        match self {
            Route::Model {
                action: Action::V1Predict | Action::Eval | Action::Events | Action::V2Infer,
                ..
            } => Method::POST,
            _ => Method::GET,
        }
    }

    /// Whether the route answers without a token and outside the in-flight
    /// limit (probes of load balancers and orchestrators).
    pub fn is_probe(&self) -> bool {
        matches!(self, Route::Live | Route::Ready)
    }
}

/// The route of a path.
pub fn route(path: &str) -> Route<'_> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v2", "health", "live"] => Route::Live,
        ["v2", "health", "ready"] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["v2"] => Route::ServerMetadata,
        ["v1", "models", rest @ ..] => v1(rest).unwrap_or(Route::NotFound),
        ["v2", "models", rest @ ..] => v2(rest).unwrap_or(Route::NotFound),
        _ => Route::NotFound,
    }
}

fn v1<'a>(rest: &[&'a str]) -> Option<Route<'a>> {
    // NAME[:action] | NAME/metadata | NAME/versions/N[:action] | NAME/versions/N/metadata
    let (name, version, tail) = match rest {
        [name, "versions", n, tail @ ..] => (*name, Some(*n), tail),
        [name, tail @ ..] => (*name, None, tail),
        [] => return None,
    };
    let (last, action) = match tail {
        [] => {
            let last = version.unwrap_or(name);
            match last.split_once(':') {
                Some((l, "predict")) => (l, Action::V1Predict),
                Some((l, "eval")) => (l, Action::Eval),
                Some((l, "events")) => (l, Action::Events),
                Some(_) => return None,
                None => (last, Action::V1Status),
            }
        }
        ["metadata"] => (version.unwrap_or(name), Action::V1Metadata),
        ["validation"] => (version.unwrap_or(name), Action::V1Validation),
        _ => return None,
    };
    let (name, version) = match version {
        Some(_) => (name, Some(last)),
        None => (last, None),
    };
    Some(Route::Model {
        name,
        version,
        action,
    })
}

fn v2<'a>(rest: &[&'a str]) -> Option<Route<'a>> {
    let (name, version, tail) = match rest {
        [name, "versions", n, tail @ ..] => (*name, Some(*n), tail),
        [name, tail @ ..] => (*name, None, tail),
        [] => return None,
    };
    let action = match tail {
        [] => Action::V2Metadata,
        ["ready"] => Action::V2Ready,
        ["infer"] => Action::V2Infer,
        _ => return None,
    };
    Some(Route::Model {
        name,
        version,
        action,
    })
}

/// The model and version a route names, or the 404 that says what is
/// served.
pub fn find<'a>(
    shared: &'a Shared,
    name: &str,
    version: Option<&str>,
) -> Result<(&'a Model, Arc<Version>), Reply> {
    let Some(model) = shared.models.iter().find(|m| m.name == name) else {
        let names: Vec<&str> = shared.models.iter().map(|m| m.name.as_str()).collect();
        return Err(Reply::error(
            StatusCode::NOT_FOUND,
            &format!("model '{name}' is not served; models: {}", names.join(", ")),
        ));
    };
    let current = model.current();
    if let Some(v) = version
        && v.parse::<u64>().ok() != Some(current.number)
    {
        return Err(Reply::error(
            StatusCode::NOT_FOUND,
            &format!("model '{name}' serves version {}, not {v}", current.number),
        ));
    }
    Ok((model, current))
}

/// The inputs a model's served outputs read, as metadata lists them.
fn read_inputs(e: &Evaluator) -> impl Iterator<Item = &crate::serving::InputColumn> {
    e.inputs()
        .iter()
        .enumerate()
        .filter(|(i, _)| e.is_required(*i))
        .map(|(_, c)| c)
}

pub fn v1_status(v: &Version) -> Reply {
    Reply::json(
        StatusCode::OK,
        format!(
            "{{\"model_version_status\":[{{\"version\":\"{}\",\"state\":\"AVAILABLE\",\
             \"status\":{{\"error_code\":\"OK\",\"error_message\":\"\"}}}}]}}",
            v.number
        ),
    )
}

pub fn v1_metadata(model: &Model, v: &Version) -> Reply {
    let e = &v.evaluator;
    let mut text = String::from("{\"model_spec\":{\"name\":");
    write_json_string(&mut text, &model.name);
    text.push_str(&format!(
        ",\"signature_name\":\"serving_default\",\"version\":\"{}\"}},\"metadata\":{{\"checksum\":",
        v.number
    ));
    write_json_string(&mut text, &v.checksum);
    text.push_str(",\"inputs\":[");
    for (i, c) in read_inputs(e).enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str("{\"name\":");
        write_json_string(&mut text, &c.name);
        text.push_str(",\"type\":");
        write_json_string(&mut text, &c.data_type.to_string());
        text.push_str(&format!(",\"required\":{}}}", !c.nullable));
    }
    text.push_str("],\"outputs\":[");
    for (i, c) in e.outputs().iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str("{\"name\":");
        write_json_string(&mut text, &c.name);
        text.push_str(",\"type\":");
        write_json_string(&mut text, &c.data_type.to_string());
        text.push('}');
    }
    text.push_str("]}}");
    Reply::json(StatusCode::OK, text)
}

pub fn v2_metadata(model: &Model, v: &Version) -> Reply {
    let e = &v.evaluator;
    let mut text = String::from("{\"name\":");
    write_json_string(&mut text, &model.name);
    text.push_str(&format!(
        ",\"versions\":[\"{}\"],\"platform\":\"skewless\",\"inputs\":[",
        v.number
    ));
    let tensor = |text: &mut String, name: &str, t: &datafusion::arrow::datatypes::DataType| {
        text.push_str("{\"name\":");
        write_json_string(text, name);
        text.push_str(&format!(
            ",\"datatype\":\"{}\",\"shape\":[-1]}}",
            v2_datatype(t)
        ));
    };
    for (i, c) in read_inputs(e).enumerate() {
        if i > 0 {
            text.push(',');
        }
        tensor(&mut text, &c.name, &c.data_type);
    }
    text.push_str("],\"outputs\":[");
    for (i, c) in e.outputs().iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        tensor(&mut text, &c.name, &c.data_type);
    }
    text.push_str("]}");
    Reply::json(StatusCode::OK, text)
}

/// `GET /v1/models/M/validation`: the `skewless validate --json` report of
/// the version's recent served rows against its training profile.
pub fn v1_validation(v: &Version) -> Reply {
    match &v.live {
        Some(live) => {
            let report = live.plan().report(
                &live.total(),
                &v.evaluator,
                &crate::validate::Limits::default(),
            );
            Reply::json(StatusCode::OK, report.to_json())
        }
        None => Reply::error(
            StatusCode::NOT_FOUND,
            "the model's artifact has no training profile (fitted before skewless wrote \
             profiles, or with --profile none): fit it again to validate what it serves",
        ),
    }
}

pub fn v2_ready(model: &Model) -> Reply {
    let mut text = String::from("{\"name\":");
    write_json_string(&mut text, &model.name);
    text.push_str(",\"ready\":true}");
    Reply::json(StatusCode::OK, text)
}

/// Rows evaluated and rows that failed, for the metrics.
pub struct Counted {
    pub reply: Reply,
    pub rows: u64,
    pub errors: u64,
}

fn bad(message: &str) -> Counted {
    Counted {
        reply: Reply::error(StatusCode::BAD_REQUEST, message),
        rows: 0,
        errors: 0,
    }
}

/// Parses a JSON body after the shape limits.
fn parse(shared: &Shared, body: &[u8]) -> Result<serde_json::Map<String, Json>, Counted> {
    check_shape(
        body,
        shared.limits.max_json_depth,
        shared.limits.max_string_bytes,
    )
    .map_err(|e| bad(&format!("the body is {e}")))?;
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(o)) => Ok(o),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(&format!("the body is not JSON: {e}"))),
    }
}

/// The served rows of one request, counted over the training profile and
/// added to the version's recent rows when the request succeeds (the
/// validation endpoint and its metrics).
struct Served<'a> {
    live: Option<&'a crate::profile::Recent>,
    tally: Option<crate::profile::Tally>,
}

impl<'a> Served<'a> {
    fn new(v: &'a Version) -> Self {
        Self {
            live: v.live.as_ref(),
            tally: v.live.as_ref().map(|l| l.plan().tally()),
        }
    }

    #[inline]
    fn count(&mut self, row: &[crate::serving::Value<'_>], outputs: &[crate::serving::Value<'_>]) {
        if let (Some(live), Some(tally)) = (self.live, self.tally.as_mut()) {
            live.plan().count(row, outputs, tally);
        }
    }

    fn tally(&mut self) -> Option<&mut crate::profile::Tally> {
        self.tally.as_mut()
    }

    fn done(self, shared: &Shared) {
        if let (Some(live), Some(tally)) = (self.live, &self.tally) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            live.add(tally, now, shared.limits.validation_rows);
        }
    }
}

fn too_many(what: &str, n: usize, limit: usize) -> Counted {
    bad(&format!(
        "{what}: {n} rows, more than the limit of {limit} per request (--max-rows)"
    ))
}

/// `:predict`: `{"instances": [row, …]}` → `{"predictions": [features, …]}`,
/// or `{"inputs": {column: [values]}}` → `{"outputs": {feature: [values]}}`.
pub fn v1_predict(shared: &Shared, v: &Version, body: &[u8]) -> Counted {
    // Rows, read row by row as `eval` reads a line (the common case, and
    // the fast one); any other shape takes the general path below.
    if let Err(e) = check_shape(
        body,
        shared.limits.max_json_depth,
        shared.limits.max_string_bytes,
    ) {
        return bad(&format!("the body is {e}"));
    }
    let mut text = String::with_capacity(64 + 256 * body.len() / 200);
    let mut served = Served::new(v);
    match v
        .evaluator
        .answer_instances(body, shared.limits.max_rows, &mut text, served.tally())
    {
        Some(InstancesAnswer::Answered { rows }) => {
            served.done(shared);
            return Counted {
                reply: Reply::json(StatusCode::OK, text),
                rows: rows as u64,
                errors: 0,
            };
        }
        Some(InstancesAnswer::Failed { index, message }) => {
            return Counted {
                errors: 1,
                rows: index as u64 + 1,
                ..bad(&format!("instances[{index}]: {message}"))
            };
        }
        Some(InstancesAnswer::TooMany { count }) => {
            return too_many("instances", count, shared.limits.max_rows);
        }
        None => {}
    }
    let doc = match parse(shared, body) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let e = &v.evaluator;
    match (doc.get("instances"), doc.get("inputs")) {
        (Some(Json::Array(rows)), None) => {
            if rows.len() > shared.limits.max_rows {
                return too_many("instances", rows.len(), shared.limits.max_rows);
            }
            let mut served = Served::new(v);
            let mut text = String::with_capacity(64 + 256 * rows.len());
            text.push_str("{\"predictions\":[");
            let mut out = Vec::with_capacity(e.outputs().len());
            for (i, row) in rows.iter().enumerate() {
                let Json::Object(object) = row else {
                    return Counted {
                        errors: 1,
                        rows: i as u64 + 1,
                        ..bad(&format!(
                            "instances[{i}]: expected a JSON object of input columns"
                        ))
                    };
                };
                if let Err(err) = e.row_from_json(object).and_then(|typed| {
                    e.eval(&typed, &mut out)?;
                    served.count(&typed, &out);
                    Ok(())
                }) {
                    return Counted {
                        errors: 1,
                        rows: i as u64 + 1,
                        ..bad(&format!("instances[{i}]: {err}"))
                    };
                }
                if i > 0 {
                    text.push(',');
                }
                e.write_json(&out, &mut text);
            }
            text.push_str("]}");
            served.done(shared);
            Counted {
                reply: Reply::json(StatusCode::OK, text),
                rows: rows.len() as u64,
                errors: 0,
            }
        }
        (Some(_), None) => bad("instances: expected a JSON array of rows"),
        (None, Some(Json::Object(columns))) => columnar(shared, v, columns),
        (None, Some(_)) => bad("inputs: expected a JSON object of columns (name: [values])"),
        (Some(_), Some(_)) => {
            bad("give either \"instances\" (rows) or \"inputs\" (columns), not both")
        }
        (None, None) => bad("expected {\"instances\": [rows]} or {\"inputs\": {column: [values]}}"),
    }
}

fn columnar(shared: &Shared, v: &Version, columns: &serde_json::Map<String, Json>) -> Counted {
    let e = &v.evaluator;
    let mut served = Served::new(v);
    let mut n = None;
    for (name, values) in columns {
        let Json::Array(values) = values else {
            return bad(&format!("inputs.{name}: expected a JSON array of values"));
        };
        match n {
            None => n = Some((name, values.len())),
            Some((first, len)) if len != values.len() => {
                return bad(&format!(
                    "inputs.{name}: {} values, but inputs.{first} has {len}: every column needs one value per row",
                    values.len()
                ));
            }
            _ => {}
        }
    }
    let Some((_, n)) = n else {
        return bad("inputs: no columns");
    };
    if n > shared.limits.max_rows {
        return too_many("inputs", n, shared.limits.max_rows);
    }
    let outputs = e.outputs();
    let mut features: Vec<String> = outputs.iter().map(|_| String::from("[")).collect();
    let mut out = Vec::with_capacity(outputs.len());
    for i in 0..n {
        let row = e.row_from_fields(|name| columns.get(name).and_then(|c| c.get(i)));
        if let Err(err) = row.and_then(|typed| {
            e.eval(&typed, &mut out)?;
            served.count(&typed, &out);
            Ok(())
        }) {
            return Counted {
                errors: 1,
                rows: i as u64 + 1,
                ..bad(&format!("inputs row {i}: {err}"))
            };
        }
        for ((text, value), c) in features.iter_mut().zip(&out).zip(outputs) {
            if i > 0 {
                text.push(',');
            }
            write_json(text, value, &c.data_type);
        }
    }
    let mut text = String::from("{\"outputs\":{");
    for (k, (f, c)) in features.iter().zip(outputs).enumerate() {
        if k > 0 {
            text.push(',');
        }
        write_json_string(&mut text, &c.name);
        text.push(':');
        text.push_str(f);
        text.push(']');
    }
    text.push_str("}}");
    served.done(shared);
    Counted {
        reply: Reply::json(StatusCode::OK, text),
        rows: n as u64,
        errors: 0,
    }
}

/// The native endpoint: each line as `skewless eval` answers it, one line
/// out per line in (blank lines and events give none).
pub fn eval_lines(shared: &Shared, v: &Version, body: &[u8]) -> Counted {
    if let Err(e) = check_shape(
        body,
        shared.limits.max_json_depth,
        shared.limits.max_string_bytes,
    ) {
        return bad(&format!("the body is {e}"));
    }
    let lines = body.split_inclusive(|&b| b == b'\n').count();
    if lines > shared.limits.max_rows {
        return too_many("lines", lines, shared.limits.max_rows);
    }
    let e = &v.evaluator;
    let mut text = String::with_capacity(body.len());
    let mut line_text = String::new();
    let (mut rows, mut errors) = (0, 0);
    let mut served = Served::new(v);
    for (i, line) in body.split_inclusive(|&b| b == b'\n').enumerate() {
        if let Some(failed) =
            e.answer_line_tallied(i + 1, line, false, &mut line_text, served.tally())
        {
            rows += 1;
            errors += u64::from(failed);
            text.push_str(&line_text);
            text.push('\n');
        }
    }
    served.done(shared);
    Counted {
        reply: Reply::ndjson(text),
        rows,
        errors,
    }
}

/// `:events`: events pushed into the window state of a model's version,
/// as `{"instances": [event, …]}` (with `"table"` for a transform over
/// several tables) or as NDJSON, one event object per line. Every event is
/// read and checked before any is pushed: a bad one pushes none.
pub fn push_events(shared: &Shared, v: &Version, body: &[u8]) -> Counted {
    let e = &v.evaluator;
    if !e.has_windows() {
        return bad("the model has no window functions, so it keeps no events");
    }
    if let Err(err) = check_shape(
        body,
        shared.limits.max_json_depth,
        shared.limits.max_string_bytes,
    ) {
        return bad(&format!("the body is {err}"));
    }
    // The rows form, or NDJSON (a single line is one event); each event
    // with what names it in an error.
    let mut table = e.request_table().to_string();
    let events: Vec<(String, Json)> = match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(mut doc)) if doc.contains_key("instances") => {
            match doc.remove("table") {
                None => {}
                Some(Json::String(t)) => table = t,
                Some(_) => return bad("table: expected the name of a table of the transform"),
            }
            let Some(Json::Array(rows)) = doc.remove("instances") else {
                return bad("instances: expected a JSON array of events");
            };
            if rows.len() > shared.limits.max_rows {
                return too_many("instances", rows.len(), shared.limits.max_rows);
            }
            rows.into_iter()
                .enumerate()
                .map(|(i, r)| (format!("instances[{i}]"), r))
                .collect()
        }
        _ => {
            let blank = |line: &[u8]| line.iter().all(u8::is_ascii_whitespace);
            let count = body.split(|&b| b == b'\n').filter(|l| !blank(l)).count();
            if count > shared.limits.max_rows {
                return too_many("lines", count, shared.limits.max_rows);
            }
            let mut lines = Vec::with_capacity(count);
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if blank(line) {
                    continue;
                }
                match serde_json::from_slice::<Json>(line) {
                    Ok(j) => lines.push((format!("line {}", i + 1), j)),
                    Err(err) => {
                        return Counted {
                            errors: 1,
                            ..bad(&format!("line {}: not JSON: {err}", i + 1))
                        };
                    }
                }
            }
            lines
        }
    };
    let mut rows = Vec::with_capacity(events.len());
    for (i, (what, event)) in events.iter().enumerate() {
        let row = match event {
            Json::Object(fields) => e.event_from_fields(&table, |name| fields.get(name)),
            _ => Err(crate::error::Error::Data(
                "expected a JSON object of the event's columns".into(),
            )),
        };
        match row {
            Ok(row) => rows.push(row),
            Err(err) => {
                return Counted {
                    errors: 1,
                    rows: i as u64 + 1,
                    ..bad(&format!(
                        "{what}: {err} (no event of this request was pushed)"
                    ))
                };
            }
        }
    }
    for (i, row) in rows.iter().enumerate() {
        if let Err(err) = e.push_to(&table, row) {
            return Counted {
                errors: 1,
                rows: i as u64 + 1,
                ..bad(&format!(
                    "{}: {err} (the {i} events before it were pushed)",
                    events[i].0
                ))
            };
        }
    }
    Counted {
        reply: Reply::json(StatusCode::OK, format!("{{\"pushed\":{}}}", rows.len())),
        rows: rows.len() as u64,
        errors: 0,
    }
}

/// A v2 tensor's values, one per row.
struct Tensor<'a> {
    data: Vec<&'a Json>,
}

/// `POST /v2/models/M/infer`: one tensor per input column, one per output.
pub fn v2_infer(shared: &Shared, model: &Model, v: &Version, body: &[u8]) -> Counted {
    let doc = match parse(shared, body) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let e = &v.evaluator;
    let Some(Json::Array(inputs)) = doc.get("inputs") else {
        return bad("inputs: expected a JSON array of tensors");
    };
    let mut tensors: Vec<(&str, Tensor<'_>)> = Vec::with_capacity(inputs.len());
    let mut rows: Option<usize> = None;
    for (k, t) in inputs.iter().enumerate() {
        let at = |m: &str| bad(&format!("inputs[{k}]: {m}"));
        let Some(name) = t.get("name").and_then(Json::as_str) else {
            return at("a tensor needs a \"name\"");
        };
        let Some(column) = e.input_index(name).map(|i| &e.inputs()[i]) else {
            let names: Vec<&str> = read_inputs(e).map(|c| c.name.as_str()).collect();
            return at(&format!(
                "'{name}' is not an input of model '{}' (inputs: {})",
                model.name,
                names.join(", ")
            ));
        };
        let Some(datatype) = t.get("datatype").and_then(Json::as_str) else {
            return at(&format!("tensor '{name}' needs a \"datatype\""));
        };
        if !v2_accepts(&column.data_type, datatype) {
            return at(&format!(
                "tensor '{name}' is {datatype}; column '{name}' is {} (datatype {})",
                column.data_type,
                v2_datatype(&column.data_type)
            ));
        }
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(Json::as_array)
            .and_then(|s| s.iter().map(Json::as_u64).collect());
        let n = match shape.as_deref() {
            Some([n]) | Some([n, 1]) => *n as usize,
            _ => {
                return at(&format!(
                    "tensor '{name}' needs a \"shape\" of [rows] or [rows, 1]"
                ));
            }
        };
        let Some(Json::Array(data)) = t.get("data") else {
            return at(&format!(
                "tensor '{name}' needs its \"data\" as a JSON array"
            ));
        };
        // Flat, or one value per row nested as [[x], [y], …].
        let data: Vec<&Json> = data
            .iter()
            .flat_map(|d| match d {
                Json::Array(inner) => inner.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
        if data.len() != n {
            return at(&format!(
                "tensor '{name}' has {} values for a shape of {n} rows",
                data.len()
            ));
        }
        match rows {
            None => rows = Some(n),
            Some(r) if r != n => {
                return at(&format!(
                    "tensor '{name}' has {n} rows, the tensors before it {r}"
                ));
            }
            _ => {}
        }
        if tensors.iter().any(|(other, _)| *other == name) {
            return at(&format!("tensor '{name}' is given twice"));
        }
        tensors.push((name, Tensor { data }));
    }
    let n = rows.unwrap_or(0);
    if n > shared.limits.max_rows {
        return too_many("inputs", n, shared.limits.max_rows);
    }
    // The outputs asked for (all by default), in the order asked.
    let all = e.outputs();
    let wanted: Vec<usize> = match doc.get("outputs") {
        None => (0..all.len()).collect(),
        Some(Json::Array(asked)) => {
            let mut wanted = Vec::new();
            for (k, o) in asked.iter().enumerate() {
                let name = o.get("name").and_then(Json::as_str).unwrap_or("");
                match all.iter().position(|c| c.name == name) {
                    Some(i) => wanted.push(i),
                    None => {
                        return bad(&format!(
                            "outputs[{k}]: '{name}' is not an output of model '{}'",
                            model.name
                        ));
                    }
                }
            }
            wanted
        }
        Some(_) => return bad("outputs: expected a JSON array of {\"name\": …}"),
    };
    let by_name: std::collections::HashMap<&str, &Tensor<'_>> =
        tensors.iter().map(|(name, t)| (*name, t)).collect();
    let mut data: Vec<String> = wanted.iter().map(|_| String::from("[")).collect();
    let mut out = Vec::with_capacity(all.len());
    let mut served = Served::new(v);
    for i in 0..n {
        let row = e.row_from_fields(|name| by_name.get(name).map(|t| t.data[i]));
        if let Err(err) = row.and_then(|typed| {
            e.eval(&typed, &mut out)?;
            served.count(&typed, &out);
            Ok(())
        }) {
            return Counted {
                errors: 1,
                rows: i as u64 + 1,
                ..bad(&format!("row {i}: {err}"))
            };
        }
        for (text, &w) in data.iter_mut().zip(&wanted) {
            if i > 0 {
                text.push(',');
            }
            write_json(text, &out[w], &all[w].data_type);
        }
    }
    served.done(shared);
    let mut text = String::from("{\"model_name\":");
    write_json_string(&mut text, &model.name);
    text.push_str(&format!(",\"model_version\":\"{}\"", v.number));
    if let Some(Json::String(id)) = doc.get("id") {
        text.push_str(",\"id\":");
        write_json_string(&mut text, id);
    }
    text.push_str(",\"outputs\":[");
    for (k, (d, &w)) in data.iter().zip(&wanted).enumerate() {
        if k > 0 {
            text.push(',');
        }
        text.push_str("{\"name\":");
        write_json_string(&mut text, &all[w].name);
        text.push_str(&format!(
            ",\"datatype\":\"{}\",\"shape\":[{n}],\"data\":{d}]}}",
            v2_datatype(&all[w].data_type)
        ));
    }
    text.push_str("]}");
    Counted {
        reply: Reply::json(StatusCode::OK, text),
        rows: n as u64,
        errors: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let m = |name, version, action| Route::Model {
            name,
            version,
            action,
        };
        assert_eq!(
            route("/v1/models/census:predict"),
            m("census", None, Action::V1Predict)
        );
        assert_eq!(
            route("/v1/models/census/versions/3:predict"),
            m("census", Some("3"), Action::V1Predict)
        );
        assert_eq!(
            route("/v1/models/census"),
            m("census", None, Action::V1Status)
        );
        assert_eq!(
            route("/v1/models/census/versions/2"),
            m("census", Some("2"), Action::V1Status)
        );
        assert_eq!(
            route("/v1/models/census/metadata"),
            m("census", None, Action::V1Metadata)
        );
        assert_eq!(
            route("/v1/models/census/versions/2/metadata"),
            m("census", Some("2"), Action::V1Metadata)
        );
        assert_eq!(
            route("/v1/models/census/validation"),
            m("census", None, Action::V1Validation)
        );
        assert_eq!(
            route("/v1/models/census/versions/2/validation"),
            m("census", Some("2"), Action::V1Validation)
        );
        assert_eq!(
            route("/v1/models/census:eval"),
            m("census", None, Action::Eval)
        );
        assert_eq!(
            route("/v1/models/census/versions/4:events"),
            m("census", Some("4"), Action::Events)
        );
        assert_eq!(route("/v1/models/census:classify"), Route::NotFound);
        assert_eq!(
            route("/v2/models/census/infer"),
            m("census", None, Action::V2Infer)
        );
        assert_eq!(
            route("/v2/models/census/versions/1/ready"),
            m("census", Some("1"), Action::V2Ready)
        );
        assert_eq!(
            route("/v2/models/census"),
            m("census", None, Action::V2Metadata)
        );
        assert_eq!(route("/v2/health/live"), Route::Live);
        assert_eq!(route("/v2/health/ready"), Route::Ready);
        assert_eq!(route("/v2"), Route::ServerMetadata);
        assert_eq!(route("/metrics"), Route::Metrics);
        assert_eq!(route("/"), Route::NotFound);
        assert_eq!(route("/v1/models"), Route::NotFound);
        assert_eq!(route("/v1/models/census/other"), Route::NotFound);
    }
}
