//! The slice of CEL that workload identity providers use in attribute mappings and
//! conditions: member and index access on `assertion` / `attribute` / `google`, string
//! literals, `==`, `!=`, `in [...]`, `&&`, `||`, `!`, parentheses, and the methods
//! `extract`, `startsWith`, `endsWith`, `contains`.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "==" => "==",
                "!=" => "!=",
                "&&" => "&&",
                "||" => "||",
                _ => match c {
                    '.' => ".",
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    ',' => ",",
                    '!' => "!",
                    _ => return Err(format!("unexpected character {c:?}")),
                },
            };
            i += sym.len();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    vars: &'a Map<String, Value>,
}

/// Evaluates `src` with the given top-level variables.
pub fn eval(src: &str, vars: &Map<String, Value>) -> Result<Value, String> {
    let mut p = Parser { toks: lex(src)?, pos: 0, vars };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(v)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), String> {
        if self.eat(sym) { Ok(()) } else { Err(format!("expected {sym}")) }
    }

    fn or(&mut self) -> Result<Value, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = Value::Bool(truthy(&v) || truthy(&r));
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<Value, String> {
        let mut v = self.unary()?;
        while self.eat("&&") {
            let r = self.unary()?;
            v = Value::Bool(truthy(&v) && truthy(&r));
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<Value, String> {
        if self.eat("!") {
            return Ok(Value::Bool(!truthy(&self.unary()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Value, String> {
        let l = self.postfix()?;
        if self.eat("==") {
            return Ok(Value::Bool(l == self.postfix()?));
        }
        if self.eat("!=") {
            return Ok(Value::Bool(l != self.postfix()?));
        }
        if matches!(self.peek(), Some(Tok::Ident(i)) if i == "in") {
            self.pos += 1;
            let r = self.postfix()?;
            return Ok(Value::Bool(r.as_array().is_some_and(|a| a.contains(&l))));
        }
        Ok(l)
    }

    fn postfix(&mut self) -> Result<Value, String> {
        let mut v = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return Err("expected a name after '.'".into());
                };
                self.pos += 1;
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    v = method(&v, &name, &args)?;
                } else {
                    v = v.get(&name).cloned().unwrap_or(Value::Null);
                }
            } else if self.eat("[") {
                let k = self.or()?;
                self.expect("]")?;
                v = match (&v, &k) {
                    (Value::Object(m), Value::String(s)) => m.get(s).cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            } else {
                return Ok(v);
            }
        }
    }

    fn primary(&mut self) -> Result<Value, String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Value::String(s))
            }
            Some(Tok::Ident(i)) => {
                self.pos += 1;
                Ok(match i.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => self.vars.get(&i).cloned().ok_or_else(|| format!("unknown name {i}"))?,
                })
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let v = self.or()?;
                self.expect(")")?;
                Ok(v)
            }
            Some(Tok::Sym("[")) => {
                self.pos += 1;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Value::Array(items))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn method(v: &Value, name: &str, args: &[Value]) -> Result<Value, String> {
    let s = v.as_str().unwrap_or_default();
    let arg = args.first().and_then(Value::as_str).unwrap_or_default();
    Ok(match name {
        "extract" => Value::String(extract(s, arg)),
        "startsWith" => Value::Bool(s.starts_with(arg)),
        "endsWith" => Value::Bool(s.ends_with(arg)),
        "contains" => Value::Bool(s.contains(arg)),
        _ => return Err(format!("unsupported method {name}")),
    })
}

/// `extract('prefix{var}suffix')`: the text after the first `prefix` and before the next
/// `suffix` (to the end when the suffix is empty); empty when the prefix is absent.
pub fn extract(input: &str, template: &str) -> String {
    let (Some(open), Some(close)) = (template.find('{'), template.find('}')) else { return String::new() };
    let (prefix, suffix) = (&template[..open], &template[close + 1..]);
    let Some(at) = input.find(prefix) else { return String::new() };
    let rest = &input[at + prefix.len()..];
    if suffix.is_empty() {
        return rest.to_owned();
    }
    rest.find(suffix).map(|e| rest[..e].to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "assertion".into(),
            json!({"sub": "system:serviceaccount:analytics:bq-reader", "kubernetes.io": {"namespace": "analytics"}}),
        );
        m.insert("attribute".into(), json!({"namespace": "analytics"}));
        m
    }

    #[test]
    fn mappings_and_conditions() {
        let v = vars();
        assert_eq!(eval("assertion.sub", &v).unwrap(), json!("system:serviceaccount:analytics:bq-reader"));
        assert_eq!(eval("assertion['kubernetes.io']['namespace']", &v).unwrap(), json!("analytics"));
        assert_eq!(
            eval("assertion.sub.extract('system:serviceaccount:{ksa_name}')", &v).unwrap(),
            json!("analytics:bq-reader")
        );
        assert_eq!(eval("assertion.sub.extract('system:serviceaccount:{ns}:')", &v).unwrap(), json!("analytics"));
        assert_eq!(eval("assertion.sub == 'system:serviceaccount:analytics:bq-reader'", &v).unwrap(), json!(true));
        assert_eq!(
            eval("attribute.namespace in ['a', 'analytics'] && !(assertion.sub == 'x')", &v).unwrap(),
            json!(true)
        );
        assert_eq!(eval("assertion.sub.startsWith('system:serviceaccount:prod:') || false", &v).unwrap(), json!(false));
        assert!(eval("assertion.sub ==", &v).is_err());
    }
}
