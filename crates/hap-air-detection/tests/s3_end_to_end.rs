//! The S3 path end to end, against a real S3-compatible server: s3s-fs
//! (a dev-dependency, so cargo installs it) serving a temporary directory
//! on 127.0.0.1 with an ephemeral port, with signature checking on. The
//! binary generates into the bucket, runs S3 → S3 with path-style
//! addressing over plain HTTP, and the objects it wrote are read straight
//! from the server's directory and checked against the oracle.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{assert_outputs_match, assert_summary_matches, bin, oracle, stderr, stdout};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

const ACCESS_KEY: &str = "hap-test-access";
/// Distinctive, so a leak into logs or outputs is easy to detect.
const SECRET_KEY: &str = "hap-test-secret-3f9c2e71d0";
const BUCKET: &str = "air";

/// Serves `root` as an S3 store until the test's runtime ends; buckets are
/// its subdirectories.
async fn start_s3_server(root: &Path) -> SocketAddr {
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs opens its root");
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    address
}

/// The binary with credentials and endpoint set the way the workspace pod
/// sets them: keys and endpoint from the environment.
fn s3_bin(endpoint: &str) -> std::process::Command {
    let mut command = bin();
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        // Verbose logs, including the HTTP client's, to prove no secret leaks.
        .env(
            "RUST_LOG",
            "debug,object_store=trace,reqwest=trace,hyper_util=trace",
        );
    command
}

async fn run(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("the binary runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_to_s3_matches_the_independent_computation() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let address = start_s3_server(root.path()).await;
    let endpoint = format!("http://{address}");

    // Generate straight into the bucket.
    let mut generate = s3_bin(&endpoint);
    generate.args(["generate", "--sensors", "12", "--days", "2", "--seed", "21"]);
    // Path style from the variable the workspace pod sets, not the flag.
    generate.env("HAP_S3_PATH_STYLE", "true");
    generate.args(["--output", "s3://air/raw/readings/"]);
    let generated = run(generate).await;
    assert!(
        generated.status.success(),
        "generate failed:\n{}",
        stderr(&generated)
    );

    // The job, with the endpoint given as a flag this time.
    let mut job = s3_bin("http://127.0.0.1:9"); // the flag must win over the variable
    job.args([
        "--input",
        "s3://air/raw/readings/",
        "--output",
        "s3://air/detections/",
    ]);
    job.args([
        "--s3-endpoint",
        &endpoint,
        "--s3-path-style",
        "--s3-region",
        "us-east-1",
    ]);
    let ran = run(job).await;
    assert!(ran.status.success(), "job failed:\n{}", stderr(&ran));

    // What the server stored is what a Presto/Trino reader would see.
    let stored_input = root.path().join("air/raw/readings");
    let stored_output = root.path().join("air/detections");
    let expected = oracle::compute(&stored_input);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(stored_output.join("_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["input"], "s3://air/raw/readings/");
    assert_eq!(summary["output"], "s3://air/detections/");
    assert_eq!(summary["input_files"], 8);
    assert_summary_matches(&summary, &expected);
    assert_outputs_match(&stored_output, &expected);
    assert!(!expected.alerts.is_empty());

    let sql = std::fs::read_to_string(stored_output.join("tables.sql")).unwrap();
    assert!(
        sql.contains("external_location = 's3a://air/detections/hourly/'"),
        "{sql}"
    );

    // Secrets stay out of logs and outputs, even at trace level.
    for (what, text) in [
        ("generate stderr", stderr(&generated)),
        ("job stderr", stderr(&ran)),
        ("job stdout", stdout(&ran)),
        ("_summary.json", summary.to_string()),
        ("tables.sql", sql),
    ] {
        assert!(!text.contains(SECRET_KEY), "{what} contains the secret key");
    }
    assert!(
        stderr(&ran).contains("DEBUG"),
        "the log level was not raised; the leak check proves nothing"
    );

    // A single object as the input.
    let one = "readings-2024-03-02-part001.csv";
    let mut job = s3_bin(&endpoint);
    job.env("RUST_LOG", "warn");
    job.args(["--input", &format!("s3://air/raw/readings/{one}")]);
    job.args(["--output", "s3://air/one/", "--s3-path-style"]);
    let ran = run(job).await;
    assert!(
        ran.status.success(),
        "single-object job failed:\n{}",
        stderr(&ran)
    );
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(stored_input.join(one), alone.path().join(one)).unwrap();
    let expected = oracle::compute(alone.path());
    let stored_output = root.path().join("air/one");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(stored_output.join("_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["input_files"], 1);
    assert_summary_matches(&summary, &expected);
    assert_outputs_match(&stored_output, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_are_clear() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let address = start_s3_server(root.path()).await;
    let endpoint = format!("http://{address}");
    let quiet = |command: &mut std::process::Command| {
        command.env("RUST_LOG", "warn");
    };

    // A bucket that does not exist.
    let mut job = s3_bin(&endpoint);
    quiet(&mut job);
    job.args([
        "--input",
        "s3://no-such-bucket/in/",
        "--output",
        "s3://air/out/",
        "--s3-path-style",
    ]);
    let out = run(job).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the bucket no-such-bucket does not exist at the S3 endpoint"),
        "{}",
        stderr(&out)
    );

    // An empty prefix in an existing bucket.
    let mut job = s3_bin(&endpoint);
    quiet(&mut job);
    job.args([
        "--input",
        "s3://air/nothing-here/",
        "--output",
        "s3://air/out/",
        "--s3-path-style",
    ]);
    let out = run(job).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no .csv files under the input s3://air/nothing-here/"),
        "{}",
        stderr(&out)
    );

    // A wrong secret: the store rejects the signature.
    let mut job = s3_bin(&endpoint);
    quiet(&mut job);
    job.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    job.args([
        "--input",
        "s3://air/in/",
        "--output",
        "s3://air/out/",
        "--s3-path-style",
    ]);
    let out = run(job).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("not-the-secret"));

    // No credentials at all: requests go out unsigned, and the store's
    // refusal says so.
    let mut job = s3_bin(&endpoint);
    quiet(&mut job);
    job.env_remove("AWS_ACCESS_KEY_ID");
    job.env_remove("AWS_SECRET_ACCESS_KEY");
    job.args([
        "--input",
        "s3://air/in/",
        "--output",
        "s3://air/out/",
        "--s3-path-style",
    ]);
    let out = run(job).await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("anonymous"), "{message}");
    assert!(
        message.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{message}"
    );

    // Path style switched off (HAP_S3_PATH_STYLE=false, as the operator sets
    // it) with an IP-address endpoint, which cannot carry bucket subdomains:
    // the message says which option to use.
    let mut job = s3_bin(&endpoint);
    quiet(&mut job);
    job.env("HAP_S3_PATH_STYLE", "false");
    job.args(["--input", "s3://air/in/", "--output", "s3://air/out/"]);
    let out = run(job).await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("--s3-path-style"), "{message}");
    assert!(message.contains("HAP_S3_PATH_STYLE=true"), "{message}");
}
