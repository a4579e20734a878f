//! Accounts and catalog sync, end to end: the real binary against the fake provider, over HTTP
//! and HTTPS, with the provider misbehaving in the ways real panels do.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, files_below};
use streamforge::fake_provider::{
    FakeAccount, FakeProvider, Fault, ProviderOptions, demo_catalog, generated_catalog,
};

/// Distinctive enough that finding it anywhere cannot be a coincidence.
const PASSWORD: &str = "Quokka-Pw-5519";

fn provider_with(streams: usize) -> FakeProvider {
    let (categories, streams) = if streams == 0 {
        demo_catalog()
    } else {
        generated_catalog(streams)
    };
    FakeProvider::start(ProviderOptions {
        accounts: vec![
            FakeAccount::new("alice", PASSWORD, 2),
            FakeAccount {
                status: "Expired".into(),
                ..FakeAccount::new("old", PASSWORD, 1)
            },
        ],
        categories,
        streams,
        ..ProviderOptions::default()
    })
    .expect("start fake provider")
}

/// A sandbox whose config trusts the provider's throwaway CA; API calls have the default
/// timeout, which a loaded machine syncing 20,000 streams needs.
fn sandbox_for(provider: &FakeProvider) -> Sandbox {
    sandbox_with(provider, "")
}

/// `sandbox_for` with more `[upstream]` settings.
fn sandbox_with(provider: &FakeProvider, upstream: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    let ca = sandbox.path().join("ca.pem");
    std::fs::write(&ca, provider.ca_pem()).expect("write CA");
    std::fs::write(
        sandbox.config_path(),
        format!(
            "[upstream]\nextra_ca_file = {:?}\n{upstream}",
            ca.display().to_string()
        ),
    )
    .expect("write config");
    sandbox
}

fn stream_count(sandbox: &Sandbox, account: &str) -> usize {
    let run = sandbox
        .run(&["streams", "--account", account, "--json"], "")
        .expect(0);
    run.json().as_array().expect("array").len()
}

#[test]
fn add_sync_and_list_over_http_and_https() {
    let provider = provider_with(0);
    let sandbox = sandbox_for(&provider);
    sandbox.add_account("plain", &provider.http_url(), "alice", PASSWORD, 2);
    sandbox.add_account("secure", &provider.https_url(), "alice", PASSWORD, 2);

    let accounts = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["plain", "secure"]);
    assert_eq!(accounts[0]["max_connections"], 2);
    assert_eq!(accounts[0]["streams"], 0);

    let test = sandbox.run(&["account", "test", "secure"], "").expect(0);
    assert!(test.stdout.contains("login ok"), "{}", test.stdout);
    assert!(test.stdout.contains("status Active"), "{}", test.stdout);

    let sync = sandbox.run(&["sync"], "").expect(0);
    let (_, expected) = demo_catalog();
    for account in ["plain", "secure"] {
        assert!(
            sync.stdout
                .contains(&format!("{account}: {} streams", expected.len())),
            "{}",
            sync.stdout
        );
        assert_eq!(stream_count(&sandbox, account), expected.len());
    }
    assert_eq!(
        provider.last_user_agent().as_deref(),
        Some("VLC/3.0.20 LibVLC/3.0.20"),
        "the configured user agent reaches the provider"
    );

    // Every provider stream is listed with its id, name, category and parsed quality.
    let streams = sandbox
        .run(&["streams", "--account", "plain", "--json"], "")
        .expect(0)
        .json();
    for fake in &expected {
        let row = streams
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stream_id"] == fake.stream_id)
            .unwrap_or_else(|| panic!("stream {} missing", fake.stream_id));
        assert_eq!(row["name"], fake.name.as_str());
        assert_eq!(row["stream"], format!("plain:{}", fake.stream_id));
        let tier = streamforge::xtream::parse_quality(&fake.name).tier;
        assert_eq!(row["quality"], tier.label());
        assert!(row["category"].is_string(), "category name resolved: {row}");
    }

    let search = sandbox
        .run(
            &[
                "streams",
                "--search",
                &expected[0].name.to_lowercase(),
                "--json",
            ],
            "",
        )
        .expect(0)
        .json();
    assert_eq!(search.as_array().unwrap().len(), 2, "one per account");

    let table = sandbox
        .run(&["streams", "--account", "plain"], "")
        .expect(0);
    assert!(table.stdout.starts_with("STREAM"), "{}", table.stdout);
    assert!(table.stdout.contains(&expected[0].name));
}

#[test]
fn sync_of_twenty_thousand_streams() {
    let provider = provider_with(20_000);
    let sandbox = sandbox_for(&provider);
    sandbox.add_account("big", &provider.http_url(), "alice", PASSWORD, 2);
    let started = Instant::now();
    let sync = sandbox.run(&["sync", "big"], "").expect(0);
    let elapsed = started.elapsed();
    println!(
        "sync of 20,000 streams: {elapsed:.2?} ({})",
        sync.stdout.trim()
    );
    assert!(
        sync.stdout.contains("20000 streams (20000 new"),
        "{}",
        sync.stdout
    );
    assert_eq!(stream_count(&sandbox, "big"), 20_000);

    // A second sync keeps every row and reports nothing new.
    let again = sandbox.run(&["sync", "big"], "").expect(0);
    assert!(
        again.stdout.contains("(0 new, 0 updated, 0 removed)"),
        "{}",
        again.stdout
    );
}

#[test]
fn broken_provider_replies_fail_clearly_and_keep_the_catalog() {
    let provider = provider_with(0);
    // A head timeout the test can afford to wait for, against a delay that always outlasts it.
    let sandbox = sandbox_with(&provider, "api_timeout = \"5s\"\n");
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 2);
    sandbox.run(&["sync"], "").expect(0);
    let before = stream_count(&sandbox, "main");
    assert!(before > 0);

    let cases: [(Fault, &str); 6] = [
        (Fault::Html200, "HTML"),
        (Fault::Garbage, "invalid JSON"),
        (Fault::Status(404), "HTTP 404"),
        (Fault::Status(500), "HTTP 500"),
        (Fault::Refuse, "main"),
        (
            Fault::SlowHeaders(Duration::from_secs(3600)),
            "no response head within 5s",
        ),
    ];
    for (fault, expected) in cases {
        provider.set_api_fault(fault, None);
        let run = sandbox.run(&["sync", "main"], "").expect(1);
        provider.clear_faults();
        assert!(
            run.stderr.contains(expected),
            "{fault:?}: expected {expected:?} in:\n{}",
            run.stderr
        );
        let first_line = run.stderr.lines().next().unwrap_or("");
        assert!(
            first_line.starts_with("error: main: sync failed: "),
            "{first_line}"
        );
        assert_eq!(
            stream_count(&sandbox, "main"),
            before,
            "{fault:?} lost the catalog"
        );
    }

    // The failures are in the event log at error level.
    let events = sandbox
        .run(&["events", "--level", "error", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(events.as_array().unwrap().len(), cases.len());
}

#[test]
fn refused_logins_and_tls_failures() {
    let provider = provider_with(0);
    let sandbox = sandbox_for(&provider);
    sandbox.add_account(
        "wrong",
        &provider.http_url(),
        "alice",
        "not-the-password",
        2,
    );
    sandbox.add_account("expired", &provider.http_url(), "old", PASSWORD, 2);
    let wrong = sandbox.run(&["account", "test", "wrong"], "").expect(1);
    assert!(
        wrong.stderr.contains("refused the login"),
        "{}",
        wrong.stderr
    );
    let expired = sandbox.run(&["sync", "expired"], "").expect(1);
    assert!(expired.stderr.contains("Expired"), "{}", expired.stderr);
    // What the panel said is kept for the appliance's page.
    let accounts = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    let expired = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "expired")
        .unwrap();
    assert_eq!(expired["subscription"]["status"], "Expired");

    // Without the throwaway CA the HTTPS panel is not trusted.
    let untrusting = Sandbox::new();
    untrusting.add_account("tls", &provider.https_url(), "alice", PASSWORD, 2);
    let tls = untrusting.run(&["sync", "tls"], "").expect(1);
    assert!(
        tls.stderr.to_lowercase().contains("tls") || tls.stderr.contains("certificate"),
        "{}",
        tls.stderr
    );

    // Nothing listening.
    let closed = Sandbox::new();
    closed.add_account("gone", "http://127.0.0.1:9", "alice", PASSWORD, 2);
    let refused = closed.run(&["account", "test", "gone"], "").expect(1);
    assert!(refused.stderr.contains("127.0.0.1:9"), "{}", refused.stderr);
}

#[test]
fn the_password_never_leaks() {
    let provider = provider_with(0);
    let sandbox = sandbox_for(&provider);
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 2);
    let mut printed = String::new();
    for args in [
        vec!["account", "list"],
        vec!["account", "list", "--json"],
        vec!["account", "test", "main"],
        vec!["sync"],
        vec!["streams", "--json"],
        vec!["events", "--json"],
        vec!["events"],
    ] {
        let run = sandbox.run(&args, "").expect(0);
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
    }
    // Failures too: error messages name the server, never the URL with its credentials.
    for fault in [Fault::Html200, Fault::Status(403), Fault::Garbage] {
        provider.set_api_fault(fault, None);
        let run = sandbox.run(&["sync"], "").expect(1);
        provider.clear_faults();
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
    }
    printed.push_str(&sandbox.run(&["events", "--json"], "").expect(0).stdout);
    assert!(!printed.contains(PASSWORD), "password printed:\n{printed}");

    let files = files_below(&sandbox.data_dir());
    assert!(files.iter().any(|f| f.ends_with("streamforge.db")));
    for file in files {
        if file.ends_with("secret.key") {
            continue;
        }
        let bytes = std::fs::read(&file).expect("read data file");
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "plaintext password in {}",
            file.display()
        );
    }
}

#[test]
fn enable_disable_and_remove() {
    let provider = provider_with(0);
    let sandbox = sandbox_for(&provider);
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 2);
    sandbox.run(&["sync"], "").expect(0);
    sandbox.run(&["account", "disable", "main"], "").expect(0);
    let list = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(list[0]["enabled"], false);
    let none = sandbox.run(&["sync"], "").expect(1);
    assert!(
        none.stderr.contains("no enabled accounts"),
        "{}",
        none.stderr
    );
    // Named explicitly, a disabled account still syncs.
    sandbox.run(&["sync", "main"], "").expect(0);
    sandbox.run(&["account", "enable", "main"], "").expect(0);
    let list = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(list[0]["enabled"], true);

    sandbox.run(&["account", "remove", "main"], "").expect(0);
    let streams = sandbox.run(&["streams", "--json"], "").expect(0).json();
    assert_eq!(streams.as_array().unwrap().len(), 0);
    let again = sandbox.run(&["account", "remove", "main"], "").expect(1);
    assert!(
        again.stderr.contains("no account named"),
        "{}",
        again.stderr
    );
}

#[test]
fn wrong_arguments_and_bad_config() {
    let sandbox = Sandbox::new();
    sandbox.run(&["frobnicate"], "").expect(2);
    sandbox
        .run(&["account", "add", "x", "--url", "http://h"], "")
        .expect(2);
    let no_password = sandbox
        .run(
            &[
                "account",
                "add",
                "x",
                "--url",
                "http://h",
                "--username",
                "u",
            ],
            "",
        )
        .expect(2);
    assert!(
        no_password.stderr.contains("--password-stdin"),
        "{}",
        no_password.stderr
    );
    sandbox
        .run(
            &[
                "account",
                "add",
                "x",
                "--url",
                "http://h",
                "--username",
                "u",
                "--password-stdin",
                "--max-connections",
                "0",
            ],
            "pw\n",
        )
        .expect(2);
    let bad_url = sandbox
        .run(
            &[
                "account",
                "add",
                "x",
                "--url",
                "ftp://h",
                "--username",
                "u",
                "--password-stdin",
            ],
            "pw\n",
        )
        .expect(2);
    assert!(
        bad_url.stderr.contains("invalid --url"),
        "{}",
        bad_url.stderr
    );
    let bad_name = sandbox
        .run(
            &[
                "account",
                "add",
                "a:b",
                "--url",
                "http://h",
                "--username",
                "u",
                "--password-stdin",
            ],
            "pw\n",
        )
        .expect(1);
    assert!(
        bad_name.stderr.contains("invalid account name"),
        "{}",
        bad_name.stderr
    );
    sandbox.run(&["events", "--level", "loud"], "").expect(2);
    sandbox
        .run(&["streams", "--account", "nobody"], "")
        .expect(1);
    let help = sandbox.run(&["--help"], "").expect(0);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);

    let broken = Sandbox::with_config("[deadlines]\nstall = \"soon\"\n");
    let run = broken.run(&["account", "list"], "").expect(1);
    assert!(run.stderr.contains("streamforge.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("deadlines.stall"), "{}", run.stderr);
}
