//! `kubectl weir list [-A]`.

use k8s_openapi::jiff::Timestamp;

use super::args::ListArgs;
use super::client::Target;
use super::error::Error;
use super::print;
use super::render::{list_text, structured};
use super::summary::{ListSummary, rows};

pub async fn show(target: &Target, args: &ListArgs) -> Result<(), Error> {
    let listed = target.list(args.all_namespaces).await?;
    for unreadable in &listed.unreadable {
        eprintln!("warning: not a readable Microservice, left out: {unreadable}");
    }
    let rows = rows(&listed.items);
    let text = match args.output {
        Some(format) => {
            structured(&ListSummary { items: rows }, format).map_err(Error::Serialize)?
        }
        None if rows.is_empty() && args.all_namespaces => {
            eprintln!("No microservices found.");
            return Ok(());
        }
        None if rows.is_empty() => {
            eprintln!("No microservices found in namespace {}.", target.namespace);
            return Ok(());
        }
        None => list_text(&rows, args.all_namespaces, Timestamp::now()),
    };
    print(&text)
}
