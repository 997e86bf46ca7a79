use std::path::Path;

use super::load::env_key_to_path;
use super::*;

#[test]
fn defaults_parse_and_env_keys_map_to_sections() {
    let config = Config::defaults();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert!(config.database_url.is_sqlite());
    assert_eq!(
        env_key_to_path("HTTP_BODY_LIMIT_BYTES"),
        "http.body_limit_bytes"
    );
    assert_eq!(env_key_to_path("DATABASE_URL"), "database_url");
    assert_eq!(env_key_to_path("LOG_FORMAT"), "log.format");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
fn file_then_environment_override_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "herald.toml",
            "listen = \"0.0.0.0:9000\"\n[http]\nbody_limit_bytes = 2000\n",
        )?;
        jail.set_env("HERALD_HTTP_BODY_LIMIT_BYTES", "4000");
        jail.set_env("HERALD_DATABASE_URL", "postgres://localhost/herald");
        jail.set_env("HERALD_ADMIN_TOKEN", "");
        let config = Config::load(Some(Path::new("herald.toml"))).expect("loads");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.http.body_limit_bytes, 4000);
        assert!(!config.database_url.is_sqlite());
        assert!(config.admin_token.is_none(), "empty secret means unset");
        jail.set_env("HERALD_DATABASE_URL", "");
        jail.set_env("HERALD_DATA_DIR", "/var/lib/herald");
        let config = Config::load(None).expect("loads");
        assert_eq!(
            config.database_url.expose(),
            "sqlite:///var/lib/herald/herald.db"
        );
        jail.set_env("HERALD_HTTP_REQUEST_TIMEOUT_SECS", "600");
        assert!(
            Config::load(None).is_err(),
            "timeouts beyond the idempotency lease are refused"
        );
        jail.set_env("HERALD_HTTP_REQUEST_TIMEOUT_SECS", "30");
        jail.set_env("HERALD_LISTN", "typo");
        assert!(Config::load(None).is_err(), "unknown keys are rejected");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
fn page_framing_and_session_lifetime_are_checked() {
    figment::Jail::expect_with(|jail| {
        let config = Config::load(None).expect("loads");
        assert!(config.pages.enabled);
        assert_eq!(config.pages.frame_ancestors, "*");
        assert_eq!(config.selfservice.session_ttl_secs, 3600);
        jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", "https://a.example 'self'");
        let config = Config::load(None).expect("loads");
        assert_eq!(config.pages.frame_ancestors, "https://a.example 'self'");
        for bad in [
            "*; script-src *",
            "https://a.example, https://b.example",
            " ",
        ] {
            jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", bad);
            assert!(Config::load(None).is_err(), "{bad:?} is refused");
        }
        jail.set_env("HERALD_PAGES_FRAME_ANCESTORS", "'none'");
        jail.set_env("HERALD_SELFSERVICE_SESSION_TTL_SECS", "5");
        assert!(Config::load(None).is_err(), "too short a session");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
fn the_public_url_sets_the_siwe_domain_and_uri() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("HERALD_PUBLIC_URL", "https://herald.example.com:8443/");
        let config = Config::load(None).expect("loads");
        assert_eq!(config.selfservice.siwe_domain, "herald.example.com:8443");
        assert_eq!(
            config.selfservice.siwe_uri,
            "https://herald.example.com:8443"
        );
        jail.set_env("HERALD_SELFSERVICE_SIWE_DOMAIN", "other.example");
        let config = Config::load(None).expect("loads");
        assert_eq!(
            config.selfservice.siwe_domain, "other.example",
            "explicit wins"
        );
        jail.set_env("HERALD_PUBLIC_URL", "herald.example.com");
        let err = Config::load(None).unwrap_err().to_string();
        assert!(err.contains("HERALD_PUBLIC_URL"), "{err}");
        Ok(())
    });
}

#[test]
fn debug_output_hides_secrets() {
    let mut config = Config::defaults();
    config.database_url = DatabaseUrl::new("postgres://u:hunter2@db/herald");
    config.admin_token = Some(SecretString::from("hadm_topsecret".to_owned()));
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("topsecret"),
        "{shown}"
    );
}
