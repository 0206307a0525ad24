//! The routing table: every endpoint berth serves, in one place. A path not listed here is a 404
//! "page not found"; an endpoint listed with a handler that refuses is a clear 501.

mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod system;
mod volumes;

use hyper::Method;

use crate::router::Route;
use crate::Backend;

/// Builds a table row from a method, a pattern and an `async fn(Arc<B>, RequestContext)`.
macro_rules! route {
    ($method:ident, $pattern:literal, $handler:path) => {
        Route {
            method: Method::$method,
            pattern: $pattern,
            handler: |backend, cx| Box::pin($handler(backend, cx)),
        }
    };
}

/// The table, in matching order (the first row that matches wins).
pub(crate) fn table<B: Backend>() -> Vec<Route<B>> {
    vec![
        // system
        route!(GET, "/_ping", system::ping),
        route!(HEAD, "/_ping", system::ping),
        route!(GET, "/version", system::version),
        route!(GET, "/info", system::info),
        route!(GET, "/system/df", system::disk_usage),
        route!(POST, "/auth", system::auth),
        route!(GET, "/events", events::events),
        // containers
        route!(GET, "/containers/json", containers::list),
        route!(POST, "/containers/create", containers::create),
        route!(POST, "/containers/prune", containers::prune),
        route!(GET, "/containers/{id}/json", containers::inspect),
        route!(GET, "/containers/{id}/top", containers::top),
        route!(GET, "/containers/{id}/logs", containers::logs),
        route!(GET, "/containers/{id}/stats", containers::stats),
        route!(POST, "/containers/{id}/resize", containers::resize),
        route!(POST, "/containers/{id}/start", containers::start),
        route!(POST, "/containers/{id}/stop", containers::stop),
        route!(POST, "/containers/{id}/restart", containers::restart),
        route!(POST, "/containers/{id}/kill", containers::kill),
        route!(POST, "/containers/{id}/update", containers::update),
        route!(POST, "/containers/{id}/rename", containers::rename),
        route!(POST, "/containers/{id}/pause", containers::pause),
        route!(POST, "/containers/{id}/unpause", containers::unpause),
        route!(POST, "/containers/{id}/attach", containers::attach),
        route!(POST, "/containers/{id}/wait", containers::wait),
        route!(DELETE, "/containers/{id}", containers::remove),
        // exec
        route!(POST, "/containers/{id}/exec", exec::create),
        route!(POST, "/exec/{id}/start", exec::start),
        route!(POST, "/exec/{id}/resize", exec::resize),
        route!(GET, "/exec/{id}/json", exec::inspect),
        // images
        route!(GET, "/images/json", images::list),
        route!(POST, "/images/create", images::create),
        route!(POST, "/images/load", images::load),
        route!(POST, "/images/prune", images::prune),
        route!(GET, "/images/get", images::save),
        route!(GET, "/images/{name*}/json", images::inspect),
        route!(GET, "/images/{name*}/history", images::history),
        route!(GET, "/images/{name*}/get", images::save_one),
        route!(POST, "/images/{name*}/push", images::push),
        route!(POST, "/images/{name*}/tag", images::tag),
        route!(DELETE, "/images/{name*}", images::remove),
        // networks
        route!(GET, "/networks", networks::list),
        route!(GET, "/networks/", networks::list),
        route!(POST, "/networks/create", networks::create),
        route!(POST, "/networks/prune", networks::prune),
        route!(GET, "/networks/{id}", networks::inspect),
        route!(DELETE, "/networks/{id}", networks::remove),
        route!(POST, "/networks/{id}/connect", networks::connect),
        route!(POST, "/networks/{id}/disconnect", networks::disconnect),
        // volumes
        route!(GET, "/volumes", volumes::list),
        route!(POST, "/volumes/create", volumes::create),
        route!(POST, "/volumes/prune", volumes::prune),
        route!(GET, "/volumes/{name}", volumes::inspect),
        route!(DELETE, "/volumes/{name}", volumes::remove),
    ]
}
