//! The C ABI from C and C++: the test programs in `tests/c/` and the example are compiled with
//! the machine's gcc and g++ against `libentitle.so` and `include/`, and run against the real
//! server (in-process, port 0, a temporary SQLite database, the demo catalogue).

use std::path::{Path, PathBuf};
use std::process::Command;

use entitle_server::config::{Config as ServerConfig, ConfigLayer};
use entitle_server::Application;
use tokio::sync::oneshot;

struct Server {
    base: String,
    tenant: String,
    product: String,
    code: String,
    dir: PathBuf,
    jwks_file: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Server {
    async fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("entitle-c-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = ServerConfig::from_layer(ConfigLayer {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(dir.join("server")),
            ..Default::default()
        })
        .unwrap();
        let mail = entitle_server::app::mail_settings(&config);
        let app = Application::build(config).await.expect("build the server");
        let base = format!("http://{}", app.local_addr());
        let seeded = entitle_server::demo::seed(app.store(), &mail)
            .await
            .expect("seed the demo");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        let jwks = reqwest::get(format!("{base}/licensing/v1/tenants/{}/jwks.json", seeded.tenant_id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let jwks_file = dir.join("jwks.json");
        std::fs::write(&jwks_file, jwks).unwrap();
        Server {
            base,
            tenant: seeded.tenant_id,
            product: seeded.product_id,
            code: seeded.entitlement.activation_code.to_string(),
            dir,
            jwks_file,
            stop: Some(stop),
            task,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ENTITLE_URL", self.base.clone()),
            ("ENTITLE_TENANT", self.tenant.clone()),
            ("ENTITLE_PRODUCT", self.product.clone()),
            ("ENTITLE_JWKS_FILE", self.jwks_file.display().to_string()),
            ("ENTITLE_CODE", self.code.clone()),
            ("ENTITLE_DIR", self.dir.display().to_string()),
            (
                "ENTITLE_REQUEST_FILE",
                self.dir.join("request.txt").display().to_string(),
            ),
            (
                "ENTITLE_LICENCE_FILE",
                self.dir.join("licence.txt").display().to_string(),
            ),
        ]
    }

    /// Posts a request file like an operator at a connected machine.
    async fn post_request_file(&self, path: &str) -> serde_json::Value {
        let request = std::fs::read_to_string(self.dir.join("request.txt")).unwrap();
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&serde_json::json!({ "request": request }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("server task").expect("server ran cleanly");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where cargo put `libentitle.so` while building this test: next to the test binary, in
/// `deps/` (`cargo build` also copies it to the profile directory above).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_owned();
    assert!(dir.join("libentitle.so").exists(), "libentitle.so in {}", dir.display());
    dir
}

fn compile(compiler: &str, source: &str, standard: &str, output: &Path) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir();
    let result = Command::new(compiler)
        .args([standard, "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join(source))
        .arg("-o")
        .arg(output)
        .arg("-L")
        .arg(&lib)
        .arg("-lentitle")
        // DT_RPATH, not RUNPATH: it wins over the LD_LIBRARY_PATH cargo sets for tests, which
        // may name a directory holding another libentitle.so.
        .arg(format!("-Wl,--disable-new-dtags,-rpath,{}", lib.display()))
        .output()
        .unwrap_or_else(|e| panic!("{compiler} is needed for this test: {e}"));
    assert!(
        result.status.success(),
        "{compiler} {source}:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Runs a compiled program off the async threads (the server keeps serving) and checks it passed.
async fn run(server: &Server, program: &Path, args: &[&str]) -> String {
    let mut command = Command::new(program);
    command.args(args).envs(server.env());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{stdout}");
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_program_online_and_offline_against_the_real_server() {
    let server = Server::start().await;
    let program = server.dir.join("flow");
    compile("gcc", "tests/c/flow.c", "-std=c11", &program);

    let out = run(&server, &program, &["online"]).await;
    assert!(out.contains(", 0 failed"), "{out}");

    run(&server, &program, &["offline_request"]).await;
    let answer = server.post_request_file("/licensing/v1/offline/activate").await;
    std::fs::write(server.dir.join("licence.txt"), answer["licence_file"].as_str().unwrap()).unwrap();
    run(&server, &program, &["offline_load"]).await;
    let freed = server.post_request_file("/licensing/v1/offline/deactivate").await;
    assert_eq!(freed["deactivated"], true, "{freed}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_wrapper_against_the_real_server() {
    let server = Server::start().await;
    let program = server.dir.join("wrapper");
    compile("g++", "tests/c/wrapper.cpp", "-std=c++17", &program);
    let out = run(&server, &program, &[]).await;
    assert!(out.contains(", 0 failed"), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_example_activates_and_runs_offline_afterwards() {
    let mut server = Server::start().await;
    let program = server.dir.join("activate");
    compile("gcc", "examples/activate.c", "-std=c11", &program);
    let jwks = std::fs::read_to_string(&server.jwks_file).unwrap();
    let mut command = Command::new(&program);
    command.arg(&server.code).envs(server.env()).env("ENTITLE_JWKS", &jwks);
    let first = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(String::from_utf8_lossy(&first.stdout), "batch export: on\n");

    // The server gone, the cached lease still answers.
    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    let mut command = Command::new(&program);
    command.envs(server.env()).env("ENTITLE_JWKS", &jwks);
    let offline = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));
    assert_eq!(String::from_utf8_lossy(&offline.stdout), "batch export: on\n");
    server.stop().await;
}
