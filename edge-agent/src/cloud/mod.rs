//! Talking to the cloud: every call goes through the project's one API client
//! (`skyport_client::Client`, with the site's token and this agent's `User-Agent`), here called
//! [`CloudClient`]; pushing the outbox ([`push`]), polling the site's snapshot ([`sync`]) and
//! reporting back what only the edge sees ([`report`]) are built on it.

pub mod push;
pub mod report;
pub mod sync;

use std::time::Duration;

pub use skyport_client::{
    Client as CloudClient, ClientError as CloudError, TokenSource, problem_detail,
};

/// How long one API call (not an image download) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's client of the cloud API at `base`.
pub fn connect(base: &str, token: TokenSource) -> Result<CloudClient, CloudError> {
    CloudClient::with_user_agent(
        base,
        token,
        concat!("skyport-edge/", env!("CARGO_PKG_VERSION")),
    )
}
