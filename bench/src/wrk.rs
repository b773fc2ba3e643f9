//! Drives one case with wrk: a generated Lua script builds each request (rotating credentials,
//! fresh nonces, distinct seat ids) and reports its figures as one JSON line from `done()`.

use anyhow::Context;
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// How each request of a case is built.
pub enum Requests {
    /// The same request each time.
    Plain { method: &'static str, path: String },
    /// Authenticated by an activation secret (rotated) with a fresh nonce; `body` as given.
    Holder {
        method: &'static str,
        path: String,
        secrets: Vec<String>,
        body: Option<String>,
    },
    /// A new activation each time: codes rotated, a seat id never used before.
    Activate {
        tenant: String,
        product: String,
        codes: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
pub struct Figures {
    pub requests: u64,
    pub duration_us: u64,
    pub non2xx: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl Figures {
    pub fn errors(&self) -> u64 {
        self.non2xx + self.connect + self.read + self.write + self.timeout
    }

    /// Answered requests per second, errors excluded.
    pub fn per_second(&self) -> f64 {
        let ok = self.requests.saturating_sub(self.non2xx);
        ok as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub seconds: u64,
}

fn lua_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("{{{}}}", quoted.join(","))
}

const COMMON: &str = r#"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
local n = 0
function done(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"#;

fn script(requests: &Requests) -> String {
    let body = match requests {
        Requests::Plain { method, path } => {
            let body = if *method == "GET" { "nil" } else { "\"{}\"" };
            format!(
                "request = function()\n  return wrk.format({method:?}, {path:?}, {{[\"Content-Type\"] = \"application/json\"}}, {body})\nend\n"
            )
        }
        Requests::Holder {
            method,
            path,
            secrets,
            body,
        } => {
            let body = body.as_deref().map_or("nil".to_owned(), |b| format!("{b:?}"));
            format!(
                "local secrets = {list}\n\
                 request = function()\n\
                 \x20 n = n + 1\n\
                 \x20 local secret = secrets[((id - 1) * 7919 + n) % #secrets + 1]\n\
                 \x20 return wrk.format({method:?}, {path:?}, {{[\"Authorization\"] = \"Bearer \" .. secret,\n\
                 \x20   [\"Entitle-Nonce\"] = string.format(\"bench-%d-%d\", id, n), [\"Content-Type\"] = \"application/json\"}}, {body})\n\
                 end\n",
                list = lua_list(secrets),
            )
        }
        Requests::Activate {
            tenant,
            product,
            codes,
        } => format!(
            "local codes = {list}\n\
             function init(args) math.randomseed(os.time() * 1000 + id) end\n\
             request = function()\n\
             \x20 n = n + 1\n\
             \x20 local code = codes[((id - 1) * 7919 + n) % #codes + 1]\n\
             \x20 local body = string.format('{{\"tenant\":\"{tenant}\",\"product\":\"{product}\",\"activation_code\":\"%s\",\"seat_id\":\"bench-seat-%d-%d-%d\",\"nonce\":\"bench-%d-%d\"}}', code, id, n, math.random(1, 1000000000), id, n)\n\
             \x20 return wrk.format(\"POST\", \"/licensing/v1/activate\", {{[\"Content-Type\"] = \"application/json\"}}, body)\n\
             end\n",
            list = lua_list(codes),
        ),
    };
    format!("{COMMON}{body}")
}

/// Runs one case against `base` (`http://host:port`) and returns its figures.
pub fn run(base: &str, requests: &Requests, load: &Load, work_dir: &Path, name: &str) -> anyhow::Result<Figures> {
    let script_path = work_dir.join(format!("{name}.lua"));
    std::fs::write(&script_path, script(requests))?;
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script_path)
        .arg(base)
        .output()
        .context("running wrk (install it: apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("WRKJSON "))
        .with_context(|| format!("wrk printed no figures: {stdout}"))?;
    serde_json::from_str(line).context("wrk's figures")
}
