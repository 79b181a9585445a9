//! Edge credentials as Cognito app clients: one per site (and per rotation), client
//! credentials grant only, scope `skyport/edge`, with a generated secret. Deleting the app
//! client is the upstream half of a revocation; the registry's own record is the other half,
//! checked on every request, so a revoked client's unexpired token is refused too.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    OAuthFlowType, TimeUnitsType, TokenValidityUnitsType,
};
use skyport_sites::{Credentials, CredentialsError, NewClient};

pub struct CognitoCredentials {
    client: Client,
    pool: String,
    token_url: Option<String>,
}

impl CognitoCredentials {
    pub fn new(client: Client, pool: String, token_url: Option<String>) -> Self {
        Self {
            client,
            pool,
            token_url,
        }
    }
}

#[async_trait::async_trait]
impl Credentials for CognitoCredentials {
    fn kind(&self) -> &'static str {
        "cognito"
    }

    async fn create(&self, site: &str) -> Result<NewClient, CredentialsError> {
        let out = self
            .client
            .create_user_pool_client()
            .user_pool_id(&self.pool)
            .client_name(format!("skyport-edge-{site}"))
            .generate_secret(true)
            .allowed_o_auth_flows_user_pool_client(true)
            .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
            .allowed_o_auth_scopes("skyport/edge")
            .supported_identity_providers("COGNITO")
            .access_token_validity(60)
            .token_validity_units(
                TokenValidityUnitsType::builder()
                    .access_token(TimeUnitsType::Minutes)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                CredentialsError::new(format!(
                    "Cognito CreateUserPoolClient in {}: {}",
                    self.pool,
                    aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
                ))
            })?;
        let missing =
            |what: &str| CredentialsError::new(format!("Cognito answered without {what}"));
        let c = out
            .user_pool_client
            .ok_or_else(|| missing("the new client"))?;
        let id = c.client_id.ok_or_else(|| missing("a client ID"))?;
        let secret = c.client_secret.ok_or_else(|| missing("a client secret"))?;
        tracing::info!(site, client_id = %id, "Cognito app client created");
        Ok(NewClient::new(id, secret, self.token_url.clone()))
    }

    async fn delete(&self, client_id: &str) -> Result<(), CredentialsError> {
        match self
            .client
            .delete_user_pool_client()
            .user_pool_id(&self.pool)
            .client_id(client_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(CredentialsError::new(format!(
                "Cognito DeleteUserPoolClient {client_id}: {}",
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
            ))),
        }
    }
}
