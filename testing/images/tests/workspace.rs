//! The workspace image, run under exactly what the operator renders for a HapContainer wired to a real
//! S3 server on loopback: the pod's user and groups, dropped capabilities, no privilege escalation, its
//! env (Secret values filled in) and its volumes (the Spark ConfigMap, the notebooks volume).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hap_image_tests::{
    BUCKET, Container, PodRun, Rendered, S3Server, SECRET_KEY, docker, hapcontainer_yaml, secrets,
    text, unique, workspace_image,
};
use serde_json::Value;

const TOKEN: &str = "hap-test-token-5b0e8f";

fn pod_for(server: &S3Server, name: &str) -> (Rendered, PodRun) {
    let rendered = Rendered::render(&hapcontainer_yaml(name, &server.endpoint()));
    let run = PodRun::new(&rendered, &secrets(TOKEN));
    (rendered, run)
}

/// The original README's checks: TensorFlow's metadata and Spark's banner, as the pod's user.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn tensorflow_and_spark_are_installed() {
    let server = S3Server::start();
    let (_, pod) = pod_for(&server, "tools");

    let out = pod.run_ok(&["pip", "show", "tensorflow"]);
    let show = text(&out.stdout);
    assert!(show.contains("Name: tensorflow\n"), "pip show: {show}");
    assert!(show.contains("Version: 2."), "pip show: {show}");

    // Spark prints its banner on stderr.
    for tool in ["spark-submit", "spark-shell", "pyspark"] {
        let out = pod.run_ok(&[tool, "--version"]);
        let banner = text(&out.stderr);
        assert!(
            banner.contains("version 4.0.1") && banner.contains("Using Scala"),
            "{tool} --version: {banner}"
        );
    }

    let out = pod.run_ok(&["id"]);
    let id = text(&out.stdout);
    assert!(
        id.starts_with("uid=1000(jovyan) gid=100(users)"),
        "the pod's user is the image's jovyan: {id}"
    );
    let out = pod.run_ok(&["python3", "-c", "import pandas, pyarrow, boto3, tensorflow; print(tensorflow.reduce_sum([1, 2, 3]).numpy())"]);
    assert_eq!(text(&out.stdout).trim(), "6");
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Jupyter starts from the entrypoint with the token from JUPYTER_TOKEN: /api/status answers 200 with
/// it and 403 without it or with another; the token never reaches the logs; the sample notebooks are
/// copied into the notebooks volume.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn jupyter_requires_the_token() {
    let server = S3Server::start();
    let (_, pod) = pod_for(&server, "jupyter");
    let name = unique("jupyter");
    let _container = Container(name.clone());
    let started = Instant::now();
    let mut args = vec!["run", "-d", "--name", &name, "-p", "127.0.0.1::8888"];
    args.extend(pod.args.iter().map(String::as_str));
    let image = workspace_image();
    args.push(&image);
    let out = std::process::Command::new("docker")
        .args(&args)
        .envs(&pod.envs)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker run: {}", text(&out.stderr));
    let port = text(&docker(&["port", &name, "8888/tcp"]).stdout);
    let port: u16 = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port: {port}"));

    let with_token = format!("/api/status?token={TOKEN}");
    let mut status = None;
    while started.elapsed() < Duration::from_secs(180) {
        status = http_status(port, &with_token);
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "measurement: Jupyter answered {:.1} s after docker run",
        started.elapsed().as_secs_f64()
    );
    let logs = docker(&["logs", &name]);
    let logs = format!("{}{}", text(&logs.stdout), text(&logs.stderr));
    assert_eq!(status, Some(200), "with the token; logs:\n{logs}");
    assert_eq!(http_status(port, "/api/status"), Some(403), "no token");
    assert_eq!(
        http_status(port, "/api/status?token=not-the-token"),
        Some(403),
        "a wrong token"
    );
    // The operator's readiness probe: the REST root answers without a token.
    assert_eq!(http_status(port, "/api"), Some(200), "readiness probe path");

    assert!(!logs.contains(TOKEN), "the token is in the logs:\n{logs}");
    assert!(!logs.contains(SECRET_KEY), "the S3 secret is in the logs");
    let samples: Vec<String> = std::fs::read_dir(pod.work.join("samples"))
        .expect("the entrypoint copies the samples into the notebooks volume")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        samples.iter().any(|f| f.ends_with(".ipynb")),
        "samples: {samples:?}"
    );
}

/// Without a token, or with an empty one, the entrypoint refuses to start Jupyter and says why.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn entrypoint_refuses_to_start_without_a_token() {
    let image = workspace_image();
    for env in [None, Some("JUPYTER_TOKEN=")] {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "1000:100",
            "--cap-drop",
            "ALL",
        ];
        if let Some(e) = env {
            args.extend(["-e", e]);
        }
        args.push(&image);
        let out = docker(&args);
        assert!(!out.status.success(), "started without a token ({env:?})");
        let err = text(&out.stderr);
        assert!(
            err.contains("JUPYTER_TOKEN is not set or empty; refusing to start Jupyter"),
            "{env:?}: {err}"
        );
        assert!(
            !err.contains("Jupyter Server") && !text(&out.stdout).contains("Jupyter Server"),
            "Jupyter ran: {err}"
        );
    }
}

/// An executor pod started without Spark's variables fails naming the missing one.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn executor_role_names_a_missing_spark_variable() {
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &workspace_image(),
        "executor",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("executor: SPARK_DRIVER_URL is not set"),
        "{}",
        text(&out.stderr)
    );
}

/// A CA mounted where the operator mounts its own is trusted beside the system's by Python's ssl
/// and requests (one bundle in /tmp, the root file system read-only as in the pod); without it,
/// nothing changes.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn a_mounted_ca_is_trusted_beside_the_systems() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=HAP test CA",
            "-days",
            "1",
            "-keyout",
            "/dev/null",
            "-out",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl: {}", text(&made.stderr));
    let check = "import os, ssl; names = [dict(x[0] for x in c['subject']).get('commonName') for c in ssl.create_default_context().get_ca_certs()]; print(os.environ.get('REQUESTS_CA_BUNDLE'), 'HAP test CA' in names, len(names) > 10)";
    let run = |mount: bool| {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--network".into(),
            "none".into(),
        ];
        args.extend(["--read-only".into(), "--tmpfs".into(), "/tmp".into()]);
        if mount {
            args.extend([
                "-v".into(),
                format!("{}:/etc/hap/ca/ca.crt:ro", ca.display()),
            ]);
        }
        args.extend([
            workspace_image(),
            "python3".into(),
            "-c".into(),
            check.into(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&refs);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(run(true), "/tmp/hap-ca-bundle.crt True True");
    assert!(
        run(false).starts_with("None False"),
        "no CA mounted, none added"
    );
}

/// PySpark writes and reads s3a:// on the S3 server with the spark-defaults.conf the operator renders
/// (mounted at SPARK_CONF_DIR): no Spark setting comes from the test.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn pyspark_reads_and_writes_s3a_with_the_rendered_conf() {
    let server = S3Server::start();
    let (rendered, pod) = pod_for(&server, "pyspark");
    let conf = rendered.spark_defaults();
    assert!(
        conf.contains(&format!(
            "spark.hadoop.fs.s3a.endpoint {}",
            server.endpoint()
        )),
        "{conf}"
    );
    let script = format!(
        r#"
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("s3a-test").getOrCreate()
print("MASTER", spark.sparkContext.master)
spark.range(0, 1000).selectExpr("id", "id * 2 AS double").write.mode("overwrite").parquet("s3a://{BUCKET}/pyspark/numbers/")
back = spark.read.parquet("s3a://{BUCKET}/pyspark/numbers/")
print("COUNT", back.count(), "SUM", back.groupBy().sum("double").first()[0])
spark.stop()
"#
    );
    let out = pod.run_ok(&["python3", "-c", &script]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("MASTER local[*]"), "{stdout}");
    assert!(stdout.contains("COUNT 1000 SUM 999000"), "{stdout}");
    // The objects are on the server, as Spark's committer left them.
    assert!(server.object("pyspark/numbers/_SUCCESS").exists());
    let parts = std::fs::read_dir(server.object("pyspark/numbers"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("part-") && name.ends_with(".parquet")
        })
        .count();
    assert!(parts > 0, "no Parquet part files on the server");
    let all = format!("{stdout}{}", text(&out.stderr));
    assert!(
        !all.contains(SECRET_KEY),
        "the S3 secret reached the output"
    );
}

/// hap-air-detection generates readings into the store and runs the job, with the pod's env only.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn air_detection_runs_against_the_store() {
    let server = S3Server::start();
    let (_, pod) = pod_for(&server, "airjob");
    pod.run_ok(&[
        "hap-air-detection",
        "generate",
        "--sensors",
        "3",
        "--days",
        "1",
        "--output",
        &format!("s3://{BUCKET}/readings/"),
    ]);
    let out = pod.run_ok(&[
        "hap-air-detection",
        "--input",
        &format!("s3://{BUCKET}/readings/"),
        "--output",
        &format!("s3://{BUCKET}/detections/"),
    ]);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the summary on stdout");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(server.object("detections/_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary, stored);
    assert!(summary["rows_read"].as_u64().unwrap() > 3 * 1000);
    assert_eq!(summary["sensors"], 3);
    assert_eq!(summary["outputs"]["aqi_daily"], 3, "{summary}");
    assert!(server.object("detections/tables.sql").exists());
}

/// The sample notebooks run headless (nbconvert) against the store, in order, and their results hold.
#[test]
#[ignore = "needs a Docker engine and the images: scripts/test.sh runs it"]
fn sample_notebooks_execute() {
    let server = S3Server::start();
    let (_, pod) = pod_for(&server, "notebooks");
    let started = Instant::now();
    pod.run_ok(&[
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=900",
        "--output-dir",
        "/home/jovyan/work/executed",
        "/opt/hap/notebooks/01-air-quality-spark.ipynb",
        "/opt/hap/notebooks/02-pm25-forecast-tensorflow.ipynb",
        "/opt/hap/notebooks/03-parquet-tables.ipynb",
    ]);
    println!(
        "measurement: the three notebooks ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let result = |file: &str| -> Value {
        let nb: Value =
            serde_json::from_slice(&std::fs::read(pod.work.join("executed").join(file)).unwrap())
                .unwrap();
        let mut found = None;
        for cell in nb["cells"].as_array().unwrap() {
            for output in cell["outputs"].as_array().into_iter().flatten() {
                let text: String = match &output["text"] {
                    Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                for line in text.lines() {
                    if let Some(json) = line.strip_prefix("RESULT ") {
                        found = Some(serde_json::from_str(json).unwrap());
                    }
                }
            }
        }
        found.unwrap_or_else(|| panic!("{file} printed no RESULT line"))
    };
    let summary: Value =
        serde_json::from_slice(&std::fs::read(server.object("detections/_summary.json")).unwrap())
            .unwrap();

    let spark = result("01-air-quality-spark.ipynb");
    println!("01: {spark}");
    // The notebook generated 5 sensors x 3 days, one reading a minute, with the generator's faults:
    // outages and gaps remove readings, re-sent rows add some. Spark read every row of the files.
    let mut generated = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(server.object("readings")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let csv = std::fs::read_to_string(&path).unwrap();
            generated += csv.lines().filter(|l| !l.is_empty()).count() as u64 - 1;
            files += 1;
        }
    }
    assert_eq!(
        files,
        3 * 4,
        "readings files: one a day per --files-per-day (4)"
    );
    assert!(generated >= 5 * 3 * 1440 * 9 / 10, "{generated} rows");
    assert_eq!(spark["readings"], generated, "{spark}");
    assert_eq!(summary["sensors"], 5);
    assert_eq!(spark["readings"], summary["rows_read"]);
    assert_eq!(spark["aqi_daily_rows"], summary["outputs"]["aqi_daily"]);
    assert_eq!(spark["job_aqi_daily"], summary["outputs"]["aqi_daily"]);
    assert!(
        spark["spark_daily_rows"].as_u64().unwrap() >= 5 * 3,
        "{spark}"
    );

    let tf = result("02-pm25-forecast-tensorflow.ipynb");
    println!("02: {tf}");
    let model = tf["model_mae"].as_f64().unwrap();
    let mean = tf["mean_mae"].as_f64().unwrap();
    assert!(tf["examples"].as_u64().unwrap() > 100, "{tf}");
    assert!(
        model.is_finite() && model < mean,
        "the model beats the mean: {tf}"
    );
    assert!(
        pod.work.join("models/pm25-next-hour.keras").exists(),
        "the trained model is saved in the notebooks volume"
    );

    let tables = result("03-parquet-tables.ipynb");
    println!("03: {tables}");
    for table in ["hourly", "aqi_daily", "alerts"] {
        assert_eq!(tables[table], summary["outputs"][table], "{table}");
    }
    assert_eq!(tables["sensors"], summary["sensors"]);
}
