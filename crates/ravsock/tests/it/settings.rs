//! The `ravsock` binary's settings from a `.env` file written the original RDF's way: the
//! database named by `RAVENVERSE_DATABASE_URI` in SQLAlchemy's form is the one used, and
//! today's `RAVSOCK_DATABASE_URL` wins when both are set.

use std::process::Command;

fn token_create(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .args(["token", "create", "--name", "ported", "--role", "requester"])
        .current_dir(dir)
        // Only the file speaks: none of the names may come from the test's own environment.
        .env_remove("RAVSOCK_DATABASE_URL")
        .env_remove("RAVENVERSE_DATABASE_URI")
        .env_remove("RDF_DATABASE_URI")
        .env_remove("RAVSOCK_DATA_DIR")
        .output()
        .expect("ravsock runs")
}

#[test]
fn a_dotenv_in_the_originals_names_chooses_the_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# from the original's README\nRAVENVERSE_DATABASE_URI=sqlite:///rdf.db?check_same_thread=False\n",
    )
    .unwrap();
    let out = token_create(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("rdf.db").is_file(), "the original's database file was created");
    assert!(!dir.path().join("ravsock-data").exists(), "the default database was not used");

    // Today's name wins over the original's.
    std::fs::write(
        dir.path().join(".env"),
        "RAVENVERSE_DATABASE_URI=sqlite:///rdf.db\nRAVSOCK_DATABASE_URL=sqlite://today.db\n",
    )
    .unwrap();
    let out = token_create(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("today.db").is_file());

    // A backend ravsock does not have is refused with a sentence naming the setting.
    std::fs::write(dir.path().join(".env"), "RAVENVERSE_DATABASE_URI=mysql://127.0.0.1/rdf\n").unwrap();
    let out = token_create(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("RAVENVERSE_DATABASE_URI: ravsock stores its data in SQLite or PostgreSQL"), "{stderr}");
}
