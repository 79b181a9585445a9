//! The reference for the cold-start benchmark: the smallest `lambda_http` function (one axum
//! route), built with the same profile as Skyport's functions.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(Router::new().route("/{*path}", get(|| async { "hello\n" }))).await
}
