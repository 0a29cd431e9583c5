//! A catalogue of well-known web applications (container images) and where
//! each keeps state that breaks horizontal scaling: data and upload
//! directories, and session settings that keep sessions inside the pod.
//!
//! Every entry names the documentation it was taken from (the app's own
//! documentation or the image's official documentation), and findings quote
//! it, so a user can check the claim. Data stores are not catalogued: they
//! are stateful by design and excluded by `patterns::stateful_image`.
//!
//! How the entries are used:
//!
//! - `local-upload-dir`: for the container whose image is the app (sidecars
//!   are ignored), each state path is looked up among that container's own
//!   mounts. The deepest mount at or above the path holds it. A writable
//!   node-local volume (emptyDir, hostPath, ephemeral, a claim that is not
//!   ReadWriteMany, a per-pod claim template) is reported at the first of its
//!   mounts that holds catalogued state. No mount at all means the app writes
//!   into the container's writable layer, lost when the pod is replaced and
//!   different in every replica: reported at the container's `image`, unless
//!   the root filesystem is read-only (then the app cannot write there).
//!   Shared (ReadWriteMany, NFS, ...) and read-only mounts are not reported.
//! - `in-memory-session`: catalogued session settings in the container's
//!   environment or command line.
//!
//! Bitnami moved its versioned images to the `bitnamilegacy/` namespace on
//! 2025-08-28 (<https://github.com/bitnami/containers/issues/83267>); both
//! namespaces have the same layout.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::patterns::glob_match;

/// One application.
#[derive(Debug, Clone, Copy)]
pub struct App {
    /// Product name, with the image family when it matters (`WordPress (Bitnami)`).
    pub name: &'static str,
    /// Repository paths (no tag or digest) of its images. A pattern without
    /// a registry host matches that path on any registry (`wordpress`
    /// matches `wordpress`, `library/wordpress`, `docker.io/wordpress`,
    /// `mirror.gcr.io/library/wordpress`); one with a host matches only that
    /// registry; `:glob` restricts the tag (`gitea/gitea:*rootless*`).
    pub images: &'static [&'static str],
    /// Directories (or files) where the app keeps state.
    pub state: &'static [StatePath],
    /// Settings that keep sessions inside the pod.
    pub sessions: &'static [SessionSetting],
    /// Where the entry was taken from.
    pub sources: &'static [&'static str],
}

/// A place where the app keeps state.
#[derive(Debug, Clone, Copy)]
pub struct StatePath {
    pub path: &'static str,
    /// Other spellings of the same directory (a symlink in the image).
    pub aliases: &'static [&'static str],
    /// What is kept there (a phrase for messages).
    pub holds: &'static str,
    /// Environment variable that moves the directory; its absolute value
    /// replaces `path` (a relative value cannot be resolved: not judged).
    pub moved_by: Option<&'static str>,
    /// The app keeps state here only when one of these is set.
    pub only_with: &'static [Setting],
    /// With one of these set the state lives outside the pod (object
    /// storage, a shared database): not reported.
    pub unless: &'static [Setting],
}

/// A `key = value` setting: an environment variable of the container, or a
/// key of a file in a ConfigMap the container mounts (`section.key` inside
/// an ini `[section]`, `KEY` outside one). Compared case-insensitively.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub keys: &'static [&'static str],
    /// Values that count; empty means any non-empty value.
    pub values: &'static [&'static str],
}

/// A session setting of an app that keeps sessions inside the pod.
#[derive(Debug, Clone, Copy)]
pub struct SessionSetting {
    /// Environment variables, and flags (`cache` for `--cache=local`).
    pub keys: &'static [&'static str],
    pub values: &'static [&'static str],
    /// Words on the command line that select it (`start-dev`).
    pub args: &'static [&'static str],
    /// What it means (a phrase for messages).
    pub means: &'static str,
}

const fn state(path: &'static str, holds: &'static str) -> StatePath {
    StatePath {
        path,
        aliases: &[],
        holds,
        moved_by: None,
        only_with: &[],
        unless: &[],
    }
}

const fn app(
    name: &'static str,
    images: &'static [&'static str],
    state: &'static [StatePath],
    sources: &'static [&'static str],
) -> App {
    App {
        name,
        images,
        state,
        sessions: &[],
        sources,
    }
}

/// The catalogue, alphabetical by name.
pub static APPS: &[App] = &[
    app(
        "BookStack (solidnerd image)",
        &["solidnerd/bookstack"],
        &[
            state(
                "/var/www/bookstack/public/uploads",
                "uploaded images and public files",
            ),
            state("/var/www/bookstack/storage/uploads", "uploaded attachments"),
        ],
        &["https://github.com/solidnerd/docker-bookstack/blob/master/README.md"],
    ),
    App {
        name: "Directus",
        images: &["directus/directus"],
        state: &[
            StatePath {
                // The default `local` storage location; a project that sets
                // STORAGE_LOCATIONS names its own locations.
                unless: &[Setting {
                    keys: &["STORAGE_LOCATIONS"],
                    values: &[],
                }],
                ..state(
                    "/directus/uploads",
                    "uploaded files (the `local` storage location)",
                )
            },
            StatePath {
                moved_by: Some("DB_FILENAME"),
                only_with: &[Setting {
                    keys: &["DB_CLIENT"],
                    values: &["sqlite3"],
                }],
                ..state("/directus/database", "the SQLite database")
            },
        ],
        sessions: &[],
        sources: &["https://docs.directus.io/self-hosted/docker-guide.html"],
    },
    app(
        "Discourse (Bitnami)",
        &["bitnami/discourse", "bitnamilegacy/discourse"],
        &[state(
            "/bitnami/discourse",
            "the Discourse data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/discourse/README.md"],
    ),
    app(
        "DokuWiki (Bitnami)",
        &["bitnami/dokuwiki", "bitnamilegacy/dokuwiki"],
        &[state(
            "/bitnami/dokuwiki",
            "the DokuWiki data (pages, media) and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/dokuwiki/README.md"],
    ),
    app(
        "Drupal (Bitnami)",
        &["bitnami/drupal", "bitnamilegacy/drupal"],
        &[state(
            "/bitnami/drupal",
            "the Drupal data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/drupal/README.md"],
    ),
    app(
        "Drupal (official image)",
        &["drupal"],
        &[
            StatePath {
                aliases: &["/opt/drupal/web/sites"],
                ..state(
                    "/var/www/html/sites",
                    "`settings.php` and uploaded files (`sites/default/files`)",
                )
            },
            StatePath {
                aliases: &["/opt/drupal/web/modules"],
                ..state(
                    "/var/www/html/modules",
                    "modules installed from the admin UI",
                )
            },
            StatePath {
                aliases: &["/opt/drupal/web/profiles"],
                ..state("/var/www/html/profiles", "installation profiles")
            },
            StatePath {
                aliases: &["/opt/drupal/web/themes"],
                ..state("/var/www/html/themes", "themes installed from the admin UI")
            },
        ],
        // Drupal 9+ images link /var/www/html to /opt/drupal/web (see the
        // Dockerfiles in docker-library/drupal).
        &[
            "https://github.com/docker-library/docs/blob/master/drupal/content.md",
            "https://github.com/docker-library/drupal",
        ],
    ),
    app(
        "EspoCRM (official image)",
        &["espocrm"],
        &[
            state(
                "/var/www/html/data",
                "uploaded files, configuration and caches",
            ),
            state("/var/www/html/custom", "customizations and extensions"),
            state("/var/www/html/client/custom", "client-side customizations"),
        ],
        &["https://github.com/docker-library/docs/blob/master/espocrm/content.md"],
    ),
    app(
        "Friendica (official image)",
        &["friendica"],
        &[state(
            "/var/www/html",
            "the installation and all data beyond the database (file uploads)",
        )],
        &["https://github.com/docker-library/docs/blob/master/friendica/content.md"],
    ),
    app(
        "Ghost (Bitnami)",
        &["bitnami/ghost", "bitnamilegacy/ghost"],
        &[state("/bitnami/ghost", "the Ghost data and configuration")],
        &["https://github.com/bitnami/containers/blob/main/bitnami/ghost/README.md"],
    ),
    app(
        "Ghost (official image)",
        &["ghost"],
        &[state(
            "/var/lib/ghost/content",
            "the content directory: uploaded images, themes and the development SQLite database",
        )],
        &["https://github.com/docker-library/docs/blob/master/ghost/content.md"],
    ),
    App {
        name: "Gitea (rootless image)",
        images: &[
            "gitea/gitea:*rootless*",
            "docker.gitea.com/gitea:*rootless*",
        ],
        state: &[
            state(
                "/var/lib/gitea",
                "the Gitea data: repositories, attachments, a SQLite database, file sessions",
            ),
            state("/etc/gitea", "`app.ini` with the generated secrets"),
        ],
        sessions: &[GITEA_MEMORY_SESSIONS],
        sources: &[
            "https://docs.gitea.com/installation/install-with-docker-rootless",
            "https://docs.gitea.com/administration/config-cheat-sheet",
        ],
    },
    App {
        name: "Gitea",
        images: &["gitea/gitea", "docker.gitea.com/gitea"],
        state: &[state(
            "/data",
            "the Gitea data and configuration: repositories, `app.ini`, attachments, a SQLite database",
        )],
        sessions: &[GITEA_MEMORY_SESSIONS],
        sources: &[
            "https://docs.gitea.com/installation/install-with-docker",
            "https://docs.gitea.com/administration/config-cheat-sheet",
        ],
    },
    App {
        name: "Grafana",
        images: &[
            "grafana/grafana",
            "grafana/grafana-oss",
            "grafana/grafana-enterprise",
        ],
        state: &[StatePath {
            moved_by: Some("GF_PATHS_DATA"),
            // Grafana keeps users, dashboards and login sessions in its
            // database; only the default sqlite3 one lives in the data path.
            unless: &[Setting {
                keys: &["GF_DATABASE_TYPE", "database.type"],
                values: &["mysql", "postgres"],
            }],
            ..state(
                "/var/lib/grafana",
                "the data path (`GF_PATHS_DATA`): the default SQLite database (users, \
                 dashboards) and plugins",
            )
        }],
        sessions: &[],
        sources: &[
            "https://github.com/grafana/grafana/blob/main/docs/sources/setup-grafana/configure-docker.md",
        ],
    },
    App {
        name: "HedgeDoc",
        images: &["hedgedoc/hedgedoc"],
        state: &[StatePath {
            unless: &[Setting {
                keys: &["CMD_IMAGE_UPLOAD_TYPE"],
                values: &["s3", "minio", "azure", "imgur", "lutim"],
            }],
            ..state("/hedgedoc/public/uploads", "uploaded images")
        }],
        sessions: &[],
        sources: &["https://github.com/hedgedoc/hedgedoc/blob/master/docs/content/setup/docker.md"],
    },
    app(
        "Jenkins",
        &["jenkins/jenkins"],
        &[state(
            "/var/jenkins_home",
            "`JENKINS_HOME`, the workspace: jobs, builds, plugins, configuration",
        )],
        &["https://github.com/jenkinsci/docker/blob/master/README.md"],
    ),
    app(
        "Joomla (Bitnami)",
        &["bitnami/joomla", "bitnamilegacy/joomla"],
        &[state(
            "/bitnami/joomla",
            "the Joomla data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/joomla/README.md"],
    ),
    app(
        "Joomla (official image)",
        &["joomla"],
        &[state(
            "/var/www/html",
            "the Joomla installation and its data",
        )],
        &["https://github.com/docker-library/docs/blob/master/joomla/compose.yaml"],
    ),
    App {
        name: "Keycloak",
        images: &["keycloak/keycloak"],
        state: &[],
        sessions: &[
            SessionSetting {
                keys: &["KC_CACHE", "cache"],
                values: &["local"],
                args: &[],
                means: "local Infinispan caches: user and authentication sessions stay on the pod \
                        that created them",
            },
            SessionSetting {
                keys: &[],
                values: &[],
                args: &["start-dev"],
                means: "development mode, which implies `--cache=local`: sessions stay on the pod \
                        that created them",
            },
        ],
        sources: &["https://www.keycloak.org/server/caching"],
    },
    app(
        "Magento (Bitnami)",
        &["bitnami/magento", "bitnamilegacy/magento"],
        &[state(
            "/bitnami/magento",
            "the Magento data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/magento/README.md"],
    ),
    App {
        name: "Mattermost",
        images: &[
            "mattermost/mattermost-team-edition",
            "mattermost/mattermost-enterprise-edition",
        ],
        state: &[StatePath {
            moved_by: Some("MM_FILESETTINGS_DIRECTORY"),
            unless: &[Setting {
                keys: &["MM_FILESETTINGS_DRIVERNAME"],
                values: &["amazons3"],
            }],
            ..state("/mattermost/data", "uploaded files and attachments")
        }],
        sessions: &[],
        sources: &["https://github.com/mattermost/docker/blob/main/docker-compose.yml"],
    },
    app(
        "Matomo (Bitnami)",
        &["bitnami/matomo", "bitnamilegacy/matomo"],
        &[state(
            "/bitnami/matomo",
            "the Matomo data and configuration",
        )],
        &["https://github.com/bitnami/charts/blob/main/bitnami/matomo/README.md"],
    ),
    app(
        "Matomo (official image)",
        &["matomo"],
        &[state(
            "/var/www/html",
            "the Matomo installation and its data",
        )],
        &["https://github.com/docker-library/docs/blob/master/matomo/content.md"],
    ),
    app(
        "MediaWiki (Bitnami)",
        &["bitnami/mediawiki", "bitnamilegacy/mediawiki"],
        &[state(
            "/bitnami/mediawiki",
            "the MediaWiki data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/mediawiki/README.md"],
    ),
    app(
        "MediaWiki (official image)",
        &["mediawiki"],
        &[state("/var/www/html/images", "uploaded files and images")],
        &["https://github.com/docker-library/docs/blob/master/mediawiki/content.md"],
    ),
    app(
        "Monica (official image)",
        &["monica"],
        &[state(
            "/var/www/html/storage",
            "uploaded photos and documents",
        )],
        &["https://github.com/docker-library/docs/blob/master/monica/content.md"],
    ),
    app(
        "Moodle (Bitnami)",
        &["bitnami/moodle", "bitnamilegacy/moodle"],
        &[
            state(
                "/bitnami/moodle",
                "the Moodle application files and configuration",
            ),
            state(
                "/bitnami/moodledata",
                "the Moodle data directory (`moodledata`)",
            ),
        ],
        &["https://github.com/bitnami/containers/blob/main/bitnami/moodle/README.md"],
    ),
    app(
        "Nextcloud (official image)",
        &["nextcloud"],
        &[
            state(
                "/var/www/html",
                "the Nextcloud installation, needed for updating",
            ),
            state("/var/www/html/custom_apps", "installed and modified apps"),
            state(
                "/var/www/html/config",
                "the local configuration (`config.php`)",
            ),
            state("/var/www/html/data", "the users' files"),
            state("/var/www/html/themes", "theming and branding"),
        ],
        &["https://github.com/docker-library/docs/blob/master/nextcloud/content.md"],
    ),
    app(
        "Nexus Repository",
        &["sonatype/nexus3"],
        &[state("/nexus-data", "configuration, logs and storage")],
        &["https://github.com/sonatype/docker-nexus3/blob/main/README.md"],
    ),
    app(
        "Odoo (Bitnami)",
        &["bitnami/odoo", "bitnamilegacy/odoo"],
        &[state("/bitnami/odoo", "the Odoo data and configuration")],
        &["https://github.com/bitnami/containers/blob/main/bitnami/odoo/README.md"],
    ),
    app(
        "Odoo (official image)",
        &["odoo"],
        &[state(
            "/var/lib/odoo",
            "the Odoo `data_dir` with the filestore (attachments)",
        )],
        &["https://github.com/docker-library/docs/blob/master/odoo/content.md"],
    ),
    App {
        name: "Outline",
        images: &["outlinewiki/outline"],
        state: &[StatePath {
            moved_by: Some("FILE_STORAGE_LOCAL_ROOT_DIR"),
            only_with: &[Setting {
                keys: &["FILE_STORAGE"],
                values: &["local"],
            }],
            ..state("/var/lib/outline/data", "uploaded attachments and images")
        }],
        sessions: &[],
        sources: &["https://github.com/outline/outline/blob/main/Dockerfile"],
    },
    app(
        "ownCloud (Bitnami)",
        &["bitnami/owncloud", "bitnamilegacy/owncloud"],
        &[state(
            "/bitnami/owncloud",
            "the ownCloud data and configuration",
        )],
        &["https://github.com/bitnami/charts/blob/main/bitnami/owncloud/README.md"],
    ),
    app(
        "Paperless-ngx",
        &["paperless-ngx/paperless-ngx"],
        &[
            state(
                "/usr/src/paperless/data",
                "the data directory, with the default SQLite database",
            ),
            state("/usr/src/paperless/media", "the stored documents"),
        ],
        &[
            "https://github.com/paperless-ngx/paperless-ngx/blob/main/docker/compose/docker-compose.postgres.yml",
        ],
    ),
    app(
        "phpBB (Bitnami)",
        &["bitnami/phpbb", "bitnamilegacy/phpbb"],
        &[state("/bitnami/phpbb", "the phpBB data and configuration")],
        &["https://github.com/bitnami/containers/blob/main/bitnami/phpbb/README.md"],
    ),
    app(
        "PrestaShop (Bitnami)",
        &["bitnami/prestashop", "bitnamilegacy/prestashop"],
        &[state(
            "/bitnami/prestashop",
            "the PrestaShop data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/prestashop/README.md"],
    ),
    app(
        "Redmine (Bitnami)",
        &["bitnami/redmine", "bitnamilegacy/redmine"],
        &[state(
            "/bitnami/redmine",
            "the Redmine data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/redmine/README.md"],
    ),
    app(
        "Redmine (official image)",
        &["redmine"],
        &[state("/usr/src/redmine/files", "uploaded files")],
        &["https://github.com/docker-library/docs/blob/master/redmine/content.md"],
    ),
    app(
        "Silverpeas (official image)",
        &["silverpeas"],
        &[
            state(
                "/opt/silverpeas/data",
                "the data created and managed by users",
            ),
            state(
                "/opt/silverpeas/xmlcomponents/workflows",
                "the workflows created in the workflow editor",
            ),
        ],
        &["https://github.com/docker-library/docs/blob/master/silverpeas/content.md"],
    ),
    app(
        "SonarQube (official image)",
        &["sonarqube"],
        &[
            state(
                "/opt/sonarqube/data",
                "data files: the embedded H2 database and the Elasticsearch indexes",
            ),
            state("/opt/sonarqube/extensions", "third-party plugins"),
        ],
        &["https://github.com/docker-library/docs/blob/master/sonarqube/content.md"],
    ),
    app(
        "SuiteCRM (Bitnami)",
        &["bitnami/suitecrm", "bitnamilegacy/suitecrm"],
        &[state(
            "/bitnami/suitecrm",
            "the SuiteCRM data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/suitecrm/README.md"],
    ),
    app(
        "WordPress (Bitnami)",
        &["bitnami/wordpress", "bitnamilegacy/wordpress"],
        &[state(
            "/bitnami/wordpress",
            "the WordPress data and configuration",
        )],
        &["https://github.com/bitnami/containers/blob/main/bitnami/wordpress/README.md"],
    ),
    app(
        "WordPress (official image)",
        &["wordpress"],
        &[
            state(
                "/var/www/html",
                "the self-updating WordPress installation: `wp-config.php`, plugins and themes \
                 installed from wp-admin",
            ),
            state(
                "/var/www/html/wp-content/uploads",
                "the media library uploads",
            ),
        ],
        &["https://github.com/docker-library/docs/blob/master/wordpress/content.md"],
    ),
];

/// Gitea's `[session] PROVIDER` (default `memory`); `file` keeps them under
/// the data path of one pod.
const GITEA_MEMORY_SESSIONS: SessionSetting = SessionSetting {
    keys: &["GITEA__session__PROVIDER"],
    values: &["memory", "file"],
    args: &[],
    means: "Gitea's session provider: sessions in the process or in files of one pod",
};

/// The catalogue.
pub fn apps() -> &'static [App] {
    APPS
}

/// Docker Hub's registry host names (and no host at all).
const DOCKER_HUB: &[&str] = &[
    "",
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// An image reference split into registry host, repository path and tag,
/// all lowercase. No host is Docker Hub; `library/` (Docker Hub's official
/// images, kept by mirrors) and ECR Public's `docker/library/` are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub path: String,
    pub tag: String,
}

/// Parse an image reference: `[host[:port]/]path[:tag][@digest]`. The first
/// component is a host when it has a `.` or `:` or is `localhost`, as in
/// Docker's own reference grammar.
pub fn parse_image(image: &str) -> ImageRef {
    let image = image.trim().to_ascii_lowercase();
    let no_digest = image.split('@').next().unwrap_or("");
    let (registry, rest) = match no_digest.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest)
        }
        _ => (String::new(), no_digest),
    };
    let (repo, tag) = match rest.rsplit_once('/') {
        Some((dir, last)) => {
            let (name, tag) = last.split_once(':').unwrap_or((last, ""));
            (format!("{dir}/{name}"), tag.to_string())
        }
        None => {
            let (name, tag) = rest.split_once(':').unwrap_or((rest, ""));
            (name.to_string(), tag.to_string())
        }
    };
    let path = repo
        .strip_prefix("docker/library/")
        .or_else(|| repo.strip_prefix("library/"))
        .unwrap_or(&repo)
        .to_string();
    let registry = if DOCKER_HUB.contains(&registry.as_str()) {
        String::new()
    } else {
        registry
    };
    let tag = if tag.is_empty() {
        "latest".to_string()
    } else {
        tag
    };
    ImageRef {
        registry,
        path,
        tag,
    }
}

/// An image pattern of the catalogue, parsed once.
struct Pattern {
    wanted: ImageRef,
    /// The pattern names a registry (its first part has a `.`): only that one matches.
    pinned_registry: bool,
    tag_glob: Option<&'static str>,
}

impl Pattern {
    fn new(pattern: &'static str) -> Self {
        let (repo_pattern, tag_glob) = match pattern.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (pattern, None),
        };
        Pattern {
            wanted: parse_image(repo_pattern),
            pinned_registry: repo_pattern
                .split_once('/')
                .is_some_and(|(first, _)| first.contains('.')),
            tag_glob,
        }
    }

    fn matches(&self, got: &ImageRef) -> bool {
        (!self.pinned_registry || self.wanted.registry == got.registry)
            && self.wanted.path == got.path
            && self.tag_glob.is_none_or(|glob| glob_match(glob, &got.tag))
    }
}

/// Every catalogue pattern by image path, in catalogue order: a workload's
/// image is looked up, not compared with each of the patterns.
fn patterns_by_path() -> &'static HashMap<String, Vec<(usize, Pattern)>> {
    static INDEX: OnceLock<HashMap<String, Vec<(usize, Pattern)>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: HashMap<String, Vec<(usize, Pattern)>> = HashMap::new();
        for (i, app) in APPS.iter().enumerate() {
            for &p in app.images {
                let pattern = Pattern::new(p);
                index
                    .entry(pattern.wanted.path.clone())
                    .or_default()
                    .push((i, pattern));
            }
        }
        index
    })
}

/// The catalogued app an image runs, if any (the first matching entry).
pub fn app_for_image(image: &str) -> Option<&'static App> {
    let got = parse_image(image);
    patterns_by_path()
        .get(&got.path)?
        .iter()
        .find(|(_, p)| p.matches(&got))
        .map(|&(i, _)| &APPS[i])
}

impl Setting {
    fn key_matches(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k.eq_ignore_ascii_case(key.trim()))
    }

    fn value_matches(&self, value: &str) -> bool {
        let v = unquote(value);
        !v.is_empty()
            && (self.values.is_empty() || self.values.iter().any(|w| w.eq_ignore_ascii_case(v)))
    }

    /// The first of `settings` this setting matches, as `KEY=value`.
    fn find_in(&self, settings: &[(String, String)]) -> Option<String> {
        settings
            .iter()
            .find(|(k, v)| self.key_matches(k) && self.value_matches(v))
            .map(|(k, v)| format!("{k}={}", v.trim()))
    }
}

fn unquote(value: &str) -> &str {
    value.trim().trim_matches(|c| c == '"' || c == '\'').trim()
}

/// `key = value` lines of a configuration file: `[section]` headers make
/// `section.key`; comments (`#`, `;`) and lines without `=` are skipped.
pub fn ini_settings(text: &str) -> Vec<(String, String)> {
    let mut section: Option<&str> = None;
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(inner.trim());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_start_matches("export ").trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        let full = match section {
            Some(s) => format!("{s}.{key}"),
            None => key.to_string(),
        };
        out.push((full, value.trim().to_string()));
    }
    out
}

/// One mount of the app's container, as the rule sees it.
#[derive(Debug, Clone)]
pub(crate) struct MountView {
    pub mount_path: String,
    /// Field path of the mount's `mountPath`.
    pub field: String,
    /// The volume's name: mounts of one volume are judged together.
    pub volume: String,
    /// `Some(description)` when the app writes through this mount to a
    /// node-local volume; `None` for shared volumes and read-only mounts.
    pub local: Option<String>,
}

/// What the rule knows about the app's container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerView<'a> {
    /// ``Container `web` of Deployment `shop` ``.
    pub who: String,
    pub image: &'a str,
    /// Field path of the container's `image`.
    pub image_field: String,
    pub mounts: Vec<MountView>,
    /// Environment variables, then settings of mounted ConfigMap files.
    pub settings: Vec<(String, String)>,
    pub read_only_root: bool,
}

/// A finding for the rule to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub field: String,
    pub message: String,
}

fn normalize(path: &str) -> &str {
    let p = path.trim().trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}

/// Whether a mount at `mount` holds `path` (is it or one of its parents).
fn covers(mount: &str, path: &str) -> bool {
    let (m, p) = (normalize(mount), normalize(path));
    m == "/" || p == m || p.strip_prefix(m).is_some_and(|rest| rest.starts_with('/'))
}

fn sources_text(app: &App) -> String {
    app.sources.join(", ")
}

/// What the catalogue says about the app's container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Judgement {
    /// One hit per node-local volume that holds catalogued state, and one
    /// for the state that no volume holds (the container's writable layer).
    pub hits: Vec<Hit>,
    /// Field paths of the mounts that hold catalogued paths, whatever the
    /// verdict: the app's own layout decides them, not the generic
    /// upload-path patterns.
    pub claimed: Vec<String>,
    /// Settings the app's storage is selected or moved by (`FILE_STORAGE`,
    /// `CMD_IMAGE_UPLOAD_TYPE`, `GF_PATHS_DATA`) that the container sets:
    /// judged here with the app's volumes, so the generic upload-setting
    /// check skips them.
    pub claimed_settings: Vec<String>,
}

/// Where the state of `app` in the container `c` goes.
pub(crate) fn local_state(app: &App, c: &ContainerView<'_>) -> Judgement {
    // (volume, first field, mount paths, state) per node-local volume.
    let mut on_volumes: Vec<(&str, &str, Vec<&str>, Vec<String>)> = Vec::new();
    let mut in_layer: Vec<String> = Vec::new();
    let mut claimed: Vec<String> = Vec::new();
    let mut claimed_settings: Vec<String> = Vec::new();
    for sp in app.state {
        let selectors = sp
            .only_with
            .iter()
            .chain(sp.unless)
            .flat_map(|s| s.keys.iter().copied())
            .chain(sp.moved_by);
        for key in selectors {
            for (k, _) in c
                .settings
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                if !claimed_settings.contains(k) {
                    claimed_settings.push(k.clone());
                }
            }
        }
        if !sp.only_with.is_empty()
            && sp
                .only_with
                .iter()
                .all(|s| s.find_in(&c.settings).is_none())
        {
            continue;
        }
        let elsewhere = sp.unless.iter().any(|s| s.find_in(&c.settings).is_some());
        let moved = sp.moved_by.and_then(|key| {
            c.settings
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(key) && !unquote(v).is_empty())
                .map(|(_, v)| unquote(v).to_string())
        });
        let spellings: Vec<String> = match moved {
            Some(p) if p.starts_with('/') => vec![normalize(&p).to_string()],
            // Relative to a working directory this manifest does not show.
            Some(_) => continue,
            None => std::iter::once(sp.path)
                .chain(sp.aliases.iter().copied())
                .map(str::to_string)
                .collect(),
        };
        let holder = c
            .mounts
            .iter()
            .filter(|m| spellings.iter().any(|p| covers(&m.mount_path, p)))
            .max_by_key(|m| normalize(&m.mount_path).len());
        if let Some(m) = holder
            && !claimed.contains(&m.field)
        {
            claimed.push(m.field.clone());
        }
        if elsewhere {
            continue;
        }
        let what = format!("{} in `{}`", sp.holds, spellings[0]);
        match holder {
            Some(m) => {
                let Some(_) = &m.local else { continue };
                match on_volumes.iter_mut().find(|(v, ..)| *v == m.volume) {
                    Some((_, _, paths, held)) => {
                        if !paths.contains(&m.mount_path.as_str()) {
                            paths.push(&m.mount_path);
                        }
                        held.push(what);
                    }
                    None => on_volumes.push((&m.volume, &m.field, vec![&m.mount_path], vec![what])),
                }
            }
            None if c.read_only_root => {}
            None => in_layer.push(what),
        }
    }
    let runs = format!("{} runs {} (image `{}`)", c.who, app.name, c.image);
    let mut hits = Vec::new();
    for (volume, field, paths, held) in on_volumes {
        let desc = c
            .mounts
            .iter()
            .find(|m| m.volume == volume)
            .and_then(|m| m.local.clone())
            .unwrap_or_default();
        let at = paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        hits.push(Hit {
            field: field.to_string(),
            message: format!(
                "{runs}, which keeps {} on {desc} (volume `{volume}`, mounted at {at}): other \
                 replicas do not see it. Source: {}",
                held.join("; "),
                sources_text(app)
            ),
        });
    }
    if !in_layer.is_empty() {
        hits.push(Hit {
            field: c.image_field.clone(),
            message: format!(
                "{runs}, which keeps {}, and no volume is mounted there: it is written into the \
                 container's writable layer, lost when the pod is replaced and different in every \
                 replica. Source: {}",
                in_layer.join("; "),
                sources_text(app)
            ),
        });
    }
    Judgement {
        hits,
        claimed,
        claimed_settings,
    }
}

/// The catalogued session setting among `env` (name, value, field path) or
/// on the command line (`argv` with the field path of each element).
pub(crate) fn session_hits(
    app: &App,
    who: &str,
    image: &str,
    env: &[(String, String, String)],
    argv: &[(&str, String)],
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut push = |field: &str, found: String, means: &str| {
        hits.push(Hit {
            field: field.to_string(),
            message: format!(
                "{who} runs {} (image `{image}`), which keeps sessions inside the pod: {found} \
                 ({means}); other replicas do not have them. Source: {}",
                app.name,
                sources_text(app)
            ),
        });
    };
    for s in app.sessions {
        let setting = Setting {
            keys: s.keys,
            values: s.values,
        };
        for (name, value, field) in env {
            if setting.key_matches(name) && setting.value_matches(value) {
                push(field, format!("env `{name}={}`", value.trim()), s.means);
            }
        }
        let words: Vec<&str> = argv.iter().map(|(a, _)| *a).collect();
        for a in super::sessions::argv_settings(&words) {
            if setting.key_matches(&a.key)
                && setting.value_matches(&a.value)
                && let Some((_, field)) = argv.get(a.index)
            {
                push(field, format!("argument `{}`", a.text), s.means);
            }
        }
        for (arg, field) in argv {
            if let Some(word) = arg
                .split_whitespace()
                .find(|w| s.args.iter().any(|x| x == w))
            {
                push(field, format!("argument `{word}`"), s.means);
            }
        }
    }
    hits
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
