//! `skyport site`: registering sites (clusters), their edge agents' credentials, and which xname
//! subtrees they own (`/edge/v1/sites`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use skyport_client::segment;

use super::{CliResult, Global, print};

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Register a site and issue its edge agent's client credentials (shown once).
    ///
    /// Example:
    ///   skyport site add east --description "Building 3, rows A-F"
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every site: credentials, assigned subtrees, what its agent last reported.
    List,
    /// One site, with its assignments.
    Show { name: String },
    /// Issue new credentials; the old ones stop working unless --keep-previous.
    ///
    /// Example (hand-over without downtime):
    ///   skyport site rotate east --keep-previous   # configure the agent with the new secret
    ///   skyport site revoke east --client-id <old id>
    Rotate {
        name: String,
        #[arg(long)]
        keep_previous: bool,
    },
    /// Revoke one client of a site (--client-id), or all of them.
    Revoke {
        name: String,
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Delete a site: its credentials and assignments (inventory records stay, unassigned).
    Delete { name: String },
    /// Assign an xname subtree (a cabinet, a chassis, a BMC) to a site.
    ///
    /// Example:
    ///   skyport site assign east x1000c0 x1000c1
    Assign {
        name: String,
        #[arg(required = true)]
        xnames: Vec<String>,
    },
    /// Remove a site's assignment of an xname subtree.
    Unassign {
        name: String,
        #[arg(required = true)]
        xnames: Vec<String>,
    },
}

const CREDENTIAL_COLUMNS: &[(&str, &str)] = &[
    ("SITE", "site"),
    ("CLIENT ID", "client_id"),
    ("CLIENT SECRET", "client_secret"),
    ("TOKEN URL", "token_url"),
];

fn path(name: &str, rest: &str) -> String {
    format!("/edge/v1/sites/{}{rest}", segment(name))
}

pub async fn site(g: &Global, c: &SiteCmd) -> CliResult {
    let client = g.client()?;
    match c {
        SiteCmd::Add { name, description } => {
            let v = client
                .send(
                    Method::POST,
                    "/edge/v1/sites",
                    Some(&json!({"name": name, "description": description})),
                )
                .await?;
            print(g.output, &v, CREDENTIAL_COLUMNS)?;
            eprintln!(
                "The secret is not stored in clear and will not be shown again: put client_id, \
                 client_secret and token_url in the site's skyport-edge configuration."
            );
            Ok(())
        }
        SiteCmd::List => {
            let v = client.get_json("/edge/v1/sites", &[]).await?;
            print(
                g.output,
                &v,
                &[
                    ("SITE", "name"),
                    ("REGISTERED", "registered"),
                    ("CLIENTS", "clients"),
                    ("ASSIGNED", "assigned"),
                    ("LAST REPORT", "status.reported_at"),
                    ("GENERATION", "status.generation"),
                    ("DESCRIPTION", "description"),
                ],
            )
        }
        SiteCmd::Show { name } => {
            let v = client.get_json(&path(name, ""), &[]).await?;
            print(g.output, &v, &[])
        }
        SiteCmd::Rotate {
            name,
            keep_previous,
        } => {
            let v = client
                .send(
                    Method::POST,
                    &path(name, "/rotate"),
                    Some(&json!({"keep_previous": keep_previous})),
                )
                .await?;
            print(g.output, &v, CREDENTIAL_COLUMNS)
        }
        SiteCmd::Revoke { name, client_id } => {
            let body = match client_id {
                Some(id) => json!({"client_id": id}),
                None => json!({}),
            };
            let v = client
                .send(Method::POST, &path(name, "/revoke"), Some(&body))
                .await?;
            print(g.output, &v, &[("SITE", "site"), ("REVOKED", "revoked")])
        }
        SiteCmd::Delete { name } => {
            let v = client.send(Method::DELETE, &path(name, ""), None).await?;
            print(g.output, &v, &[("MESSAGE", "message")])
        }
        SiteCmd::Assign { name, xnames } => {
            let mut out = Vec::new();
            for x in xnames {
                let p = path(name, &format!("/xnames/{}", segment(x)));
                out.push(client.send(Method::PUT, &p, None).await?);
            }
            print(
                g.output,
                &Value::Array(out),
                &[("XNAME", "xname"), ("SITE", "site"), ("SOURCE", "source")],
            )
        }
        SiteCmd::Unassign { name, xnames } => {
            for x in xnames {
                let p = path(name, &format!("/xnames/{}", segment(x)));
                client.send(Method::DELETE, &p, None).await?;
            }
            Ok(())
        }
    }
}
