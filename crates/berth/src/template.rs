//! The subset of Go's `text/template` that docker's `--format` uses, written here: gtmpl's last
//! release is from 2021, and gotmpl (0.6) needs Rust 1.89, above the workspace's 1.85; neither
//! has docker's `table` directive or its `json`/`join` functions, which are docker's own.
//!
//! Supported: text, `{{.Field.Path}}`, `{{.}}`, pipelines `a | b`, the functions `json`, `join`,
//! `index`, `upper`, `lower`, `title`, `println`, `len`, `{{range …}}…{{end}}`,
//! `{{if …}}…{{else}}…{{end}}`, the `{{-`/`-}}` trim markers, and docker's `table` prefix (a
//! header line, then rows aligned as Go's tabwriter) with `\t` and `\n` escapes. Anything else is
//! refused with an error naming it, never silently printed.

use serde_json::Value;

/// A template that could not be parsed or run.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a template this subset understands.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// The template named a function this subset does not have.
    #[error("template: function \"{0}\" not defined")]
    UnknownFunction(String),
    /// A function got arguments it cannot use.
    #[error("template: error calling {0}: {1}")]
    Call(String, String),
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Str(String),
}

#[derive(Debug, Clone)]
struct Command {
    func: Option<String>,
    args: Vec<Arg>,
}

type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range(Pipeline, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed `--format` value.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// Whether it began with docker's `table` directive.
    pub table: bool,
}

const FUNCTIONS: [&str; 8] = [
    "json", "join", "index", "upper", "lower", "title", "println", "len",
];

impl Template {
    /// Parses a `--format` value (docker's `table` prefix and `\t`/`\n` escapes included).
    pub fn parse(format: &str) -> Result<Self, TemplateError> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let tokens = tokenize(&body)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&tokens, &mut pos)?;
        if let Some(word) = end {
            return Err(TemplateError::Parse(format!("unexpected {{{{{word}}}}}")));
        }
        Ok(Self { nodes, table })
    }

    /// Runs the template against one object.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

enum Token {
    Text(String),
    Action(String),
}

fn tokenize(body: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = body;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = rest[..open].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| TemplateError::Parse("unclosed action".to_string()))?;
        let mut inner = &after[..close];
        if let Some(i) = inner.strip_prefix('-') {
            text = text.trim_end().to_string();
            inner = i;
        }
        trim_next = false;
        if let Some(i) = inner.strip_suffix('-') {
            trim_next = true;
            inner = i;
        }
        if !text.is_empty() {
            tokens.push(Token::Text(text));
        }
        tokens.push(Token::Action(inner.trim().to_string()));
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        tokens.push(Token::Text(text.to_string()));
    }
    Ok(tokens)
}

/// Parses nodes until `{{end}}` or `{{else}}` (returned as the second value) or the end.
fn parse_nodes(
    tokens: &[Token],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let token = &tokens[*pos];
        *pos += 1;
        match token {
            Token::Text(t) => nodes.push(Node::Text(t.clone())),
            Token::Action(a) if a == "end" || a == "else" => return Ok((nodes, Some(a.clone()))),
            Token::Action(a) => {
                if let Some(p) = a.strip_prefix("range ") {
                    let pipe = parse_pipeline(p)?;
                    let (body, end) = parse_nodes(tokens, pos)?;
                    if end.as_deref() != Some("end") {
                        return Err(TemplateError::Parse("range without end".to_string()));
                    }
                    nodes.push(Node::Range(pipe, body));
                } else if let Some(p) = a.strip_prefix("if ") {
                    let pipe = parse_pipeline(p)?;
                    let (then, end) = parse_nodes(tokens, pos)?;
                    let otherwise = match end.as_deref() {
                        Some("end") => Vec::new(),
                        Some("else") => {
                            let (e, end) = parse_nodes(tokens, pos)?;
                            if end.as_deref() != Some("end") {
                                return Err(TemplateError::Parse("if without end".to_string()));
                            }
                            e
                        }
                        _ => return Err(TemplateError::Parse("if without end".to_string())),
                    };
                    nodes.push(Node::If(pipe, then, otherwise));
                } else {
                    nodes.push(Node::Action(parse_pipeline(a)?));
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_pipeline(text: &str) -> Result<Pipeline, TemplateError> {
    let mut pipeline = Vec::new();
    for part in split_outside_quotes(text, '|') {
        let words = words(&part)?;
        let Some(first) = words.first() else {
            return Err(TemplateError::Parse(format!("missing value in \"{text}\"")));
        };
        let command = if first.starts_with('.') || first.starts_with('"') {
            Command {
                func: None,
                args: words.iter().map(|w| arg(w)).collect(),
            }
        } else {
            if !FUNCTIONS.contains(&first.as_str()) {
                return Err(TemplateError::UnknownFunction(first.clone()));
            }
            Command {
                func: Some(first.clone()),
                args: words[1..].iter().map(|w| arg(w)).collect(),
            }
        };
        pipeline.push(command);
    }
    Ok(pipeline)
}

fn arg(word: &str) -> Arg {
    if let Some(s) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return Arg::Str(s.replace("\\\"", "\""));
    }
    Arg::Field(
        word.split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == sep && !quoted {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn words(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            word.push(chars.next().unwrap_or('"'));
            let mut closed = false;
            while let Some(c) = chars.next() {
                word.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(TemplateError::Parse(format!(
                    "unterminated quoted string in \"{text}\""
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn lookup(data: &Value, path: &[String]) -> Value {
    let mut v = data;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return Value::Null,
        }
    }
    v.clone()
}

fn eval_arg(a: &Arg, data: &Value) -> Value {
    match a {
        Arg::Field(path) => lookup(data, path),
        Arg::Str(s) => Value::String(s.clone()),
    }
}

fn eval(pipeline: &Pipeline, data: &Value) -> Result<Value, TemplateError> {
    let mut previous: Option<Value> = None;
    for command in pipeline {
        let mut args: Vec<Value> = command.args.iter().map(|a| eval_arg(a, data)).collect();
        if let Some(p) = previous.take() {
            args.push(p);
        }
        let value = match command.func.as_deref() {
            // docker's `{{.Label "key"}}` method on ps rows: the row carries its labels under
            // the hidden `__labels` key.
            None if matches!(command.args.first(), Some(Arg::Field(p)) if p.last().map(String::as_str) == Some("Label")) =>
            {
                let key = args.get(1).map(go_string).unwrap_or_default();
                data.get("__labels")
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or(Value::String(String::new()))
            }
            None => args.into_iter().next().unwrap_or(Value::Null),
            Some(f) => call(f, args)?,
        };
        previous = Some(value);
    }
    Ok(previous.unwrap_or(Value::Null))
}

fn call(f: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let one = |args: &[Value]| -> Result<Value, TemplateError> {
        args.first()
            .cloned()
            .ok_or_else(|| TemplateError::Call(f.to_string(), "wrong number of args".to_string()))
    };
    Ok(match f {
        "json" => Value::String(go_json(&one(&args)?)),
        "upper" => Value::String(go_string(&one(&args)?).to_uppercase()),
        "lower" => Value::String(go_string(&one(&args)?).to_lowercase()),
        "title" => {
            let s = go_string(&one(&args)?);
            let mut c = s.chars();
            Value::String(match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            })
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(go_string).collect::<Vec<_>>().join(" ")
        )),
        "len" => Value::from(match one(&args)? {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            Value::String(s) => s.len(),
            Value::Null => 0,
            other => {
                return Err(TemplateError::Call(
                    "len".to_string(),
                    format!("len of {}", go_string(&other)),
                ))
            }
        }),
        "join" => {
            let (Some(list), Some(sep)) = (args.first(), args.get(1)) else {
                return Err(TemplateError::Call(
                    "join".to_string(),
                    "wrong number of args".to_string(),
                ));
            };
            let items: Vec<String> = match list {
                Value::Array(a) => a.iter().map(go_string).collect(),
                Value::Null => Vec::new(),
                other => vec![go_string(other)],
            };
            Value::String(items.join(&go_string(sep)))
        }
        "index" => {
            let (Some(container), Some(key)) = (args.first(), args.get(1)) else {
                return Err(TemplateError::Call(
                    "index".to_string(),
                    "wrong number of args".to_string(),
                ));
            };
            match (container, key) {
                (Value::Object(o), k) => o.get(&go_string(k)).cloned().unwrap_or(Value::Null),
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| a.get(i as usize).cloned())
                    .ok_or_else(|| {
                        TemplateError::Call("index".to_string(), "index out of range".to_string())
                    })?,
                _ => Value::Null,
            }
        }
        other => return Err(TemplateError::UnknownFunction(other.to_string())),
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn render_nodes(nodes: &[Node], data: &Value, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&go_string(&eval(p, data)?)),
            Node::Range(p, body) => match eval(p, data)? {
                Value::Array(items) => {
                    for item in &items {
                        render_nodes(body, item, out)?;
                    }
                }
                Value::Object(map) => {
                    for item in map.values() {
                        render_nodes(body, item, out)?;
                    }
                }
                _ => {}
            },
            Node::If(p, then, otherwise) => {
                if truthy(&eval(p, data)?) {
                    render_nodes(then, data, out)?;
                } else {
                    render_nodes(otherwise, data, out)?;
                }
            }
        }
    }
    Ok(())
}

/// A value printed as Go's `fmt` prints it in a template: maps as `map[k:v]`, lists as `[a b]`.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// JSON as Go's `json.Marshal` writes it: compact, with `<`, `>` and `&` escaped.
pub fn go_json(v: &Value) -> String {
    // Hidden helper keys (`__labels`) are not part of the object docker would marshal.
    let visible = match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    serde_json::to_string(&visible)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t)
            .expect("parse")
            .render(&v)
            .expect("render")
    }

    #[test]
    fn fields_functions_and_control() {
        let v =
            json!({"ID": "abc", "State": {"Status": "running"}, "L": ["a", "b"], "M": {"k": "v"}});
        assert_eq!(r("{{.ID}} {{.State.Status}}", v.clone()), "abc running");
        assert_eq!(r("{{json .L}}", v.clone()), "[\"a\",\"b\"]");
        assert_eq!(r("{{join .L \",\"}}", v.clone()), "a,b");
        assert_eq!(r("{{index .M \"k\"}}", v.clone()), "v");
        assert_eq!(r("{{range .L}}<{{.}}>{{end}}", v.clone()), "<a><b>");
        assert_eq!(r("{{if .ID}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(r("{{.M}} {{.L}}", v.clone()), "map[k:v] [a b]");
        assert_eq!(r("{{.ID | upper}}", v.clone()), "ABC");
        assert_eq!(r("a  {{- .ID -}}  b", v), "aabcb");
        assert!(
            Template::parse("table {{.ID}}\\t{{.Names}}")
                .expect("parse")
                .table
        );
        assert!(matches!(
            Template::parse("{{nope .ID}}"),
            Err(TemplateError::UnknownFunction(_))
        ));
    }
}
