//! The console's [`Gate`] over `[auth]`'s identities: sign-in checks an access key's secret,
//! and each page's action is authorized as an API request of the same identity would be
//! (its identity policies; resource policies are not consulted for console pages), audited
//! the same way.

use std::sync::Arc;

use millrace_auth::{Auth, Mode};
use millrace_console::auth::{Client, Gate, Resource};

pub struct AuthGate(pub Arc<Auth>);

impl AuthGate {
    /// The ARN of a console resource in this server's account and region.
    fn arn(&self, r: &Resource) -> String {
        let (account, region) = (self.0.account(), self.0.region());
        match r {
            Resource::Any => "*".to_owned(),
            Resource::Stream(s) => format!("arn:aws:kinesis:{region}:{account}:stream/{s}"),
            Resource::Bucket(b) => format!("arn:aws:s3:::{b}"),
            Resource::Object(b, k) => format!("arn:aws:s3:::{b}/{k}"),
            Resource::Model(m) => format!("arn:aws:sagemaker:{region}:{account}:model/{m}"),
            Resource::Endpoint(e) => format!("arn:aws:sagemaker:{region}:{account}:endpoint/{e}"),
        }
    }
}

impl Gate for AuthGate {
    fn enforcing(&self) -> bool {
        self.0.mode() == Mode::Enforce
    }

    fn sign_in(&self, access_key_id: &str, secret: &str, client: Client) -> Result<String, String> {
        self.0
            .sign_in(access_key_id, secret, client.ip, client.tls)
            .map(|caller| {
                caller
                    .principal
                    .map_or_else(String::new, |p| p.name.clone())
            })
            .map_err(|e| e.to_string())
    }

    fn allowed(
        &self,
        access_key_id: Option<&str>,
        action: &str,
        resource: &Resource,
        client: Client,
    ) -> Result<(), String> {
        let caller = self.0.caller(access_key_id, client.ip, client.tls);
        self.0
            .authorize(&caller, action, &self.arn(resource), None)
            .map_err(|e| format!("{}: {e}", e.aws_code()))
    }
}
