//! Who may call the services.
//!
//! - [`Access`]: all of it, as a service sets it up;
//! - [`audit`]: recording administrative changes;
//! - [`method`]: the scope each gRPC method needs;
//! - [`api_key`]: the form of an API key, making one, and checking its secret;
//! - [`ring`]: the keys in force, folded from the log's key events;
//! - [`follow`]: keeping a ring up to date from the log;
//! - [`jwt`]: service tokens of the identity provider, checked with the keys
//!   [`jwks`] reads;
//! - [`gate`]: the check every call passes before a service sees it;
//! - [`settings`]: the start-up settings (bootstrap key, JWT, reflection).

mod access;
pub mod api_key;
pub mod audit;
pub mod follow;
pub mod gate;
pub mod jwks;
pub mod jwt;
pub mod method;
pub mod ring;
pub mod settings;

pub use access::Access;
pub use gate::AccessGate;
pub use settings::{AccessSettings, JwtAlgorithm, JwtSettings};
