//! The command line of `kubectl weir`, with kubectl's conventions for the cluster flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::release::ManualAction;

/// Watch and act on Weir releases.
#[derive(Parser, Debug)]
#[command(name = "kubectl weir", bin_name = "kubectl weir", version)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Which cluster and namespace, as kubectl reads them.
#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Namespace of the Microservice (default: the context's namespace, else `default`).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show where a Microservice and its release stand.
    Status(StatusArgs),
    /// End the current step (for example `pause: {}`); with --full, skip every remaining
    /// step and the analysis. With --group, of every member of a release group.
    Promote(PromoteArgs),
    /// Stop the release: traffic back to the stable version, then the new one scales down.
    /// With --group, of every member of a release group.
    Abort(GroupActionArgs),
    /// Release the aborted revision again, from the first step.
    Retry(ActionArgs),
    /// Hold the release at its current step.
    Pause(ActionArgs),
    /// Lift a pause set by `pause` (a `pause: {}` step needs `promote`).
    Resume(ActionArgs),
    /// List the Microservices and where their releases stand.
    List(ListArgs),
    /// Serve a live release dashboard on this machine, with your own credentials.
    Dashboard(DashboardArgs),
    /// Print a Microservice written from a running Deployment (and its Service, autoscaler
    /// and disruption budget); what cannot be carried over is listed on stderr.
    Migrate(MigrateArgs),
    /// Leave Weir without an outage: delete the Microservice and keep its running
    /// Deployment, Services, route, PDB and autoscaler, unowned and without Weir's labels.
    Eject(EjectArgs),
}

#[derive(Args, Debug)]
pub struct EjectArgs {
    /// Name of the Microservice.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The Deployment: `deployment/NAME` or `NAME`.
    pub deployment: String,
    /// The Service whose ports to take (default: the Deployment's name).
    #[arg(long)]
    pub service: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Name of the Microservice.
    pub name: String,
    /// Redraw on every change: until Ctrl-C on a terminal, until the release ends otherwise.
    #[arg(short, long)]
    pub watch: bool,
    /// Print a structured summary instead of text.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// Skip the remaining steps and the analysis, and promote.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub action: GroupActionArgs,
}

#[derive(Args, Debug)]
pub struct ActionArgs {
    /// Name of the Microservice.
    pub name: String,
    /// Return once the action is requested, without waiting for Weir to act on it.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for Weir to act on the request, for example `10s` or `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// An action on one Microservice, or on every member of a release group: NAME or --group,
/// not both.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("subject").required(true).args(["name", "group"])))]
pub struct GroupActionArgs {
    /// Name of the Microservice.
    pub name: Option<String>,
    /// Act on every Microservice of the namespace whose `spec.rollout.group` is GROUP.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Return once the action is requested, without waiting for Weir to act on it.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for Weir to act on the request, for example `10s` or `1m`.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// What a release action applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The Microservice of this name.
    Microservice(&'a str),
    /// Every Microservice of the namespace whose `spec.rollout.group` is this name.
    Group(&'a str),
}

/// A release action's subject, and how long to wait for Weir to act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act<'a> {
    pub subject: Subject<'a>,
    pub no_wait: bool,
    pub timeout: Duration,
}

impl<'a> From<&'a ActionArgs> for Act<'a> {
    fn from(args: &'a ActionArgs) -> Act<'a> {
        Act {
            subject: Subject::Microservice(&args.name),
            no_wait: args.no_wait,
            timeout: args.timeout,
        }
    }
}

impl<'a> From<&'a GroupActionArgs> for Act<'a> {
    /// clap's `subject` group makes exactly one of NAME and --group present.
    fn from(args: &'a GroupActionArgs) -> Act<'a> {
        let subject = match (&args.group, &args.name) {
            (Some(group), _) => Subject::Group(group),
            (None, name) => Subject::Microservice(name.as_deref().unwrap_or_default()),
        };
        Act {
            subject,
            no_wait: args.no_wait,
            timeout: args.timeout,
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// List the Microservices of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print a structured summary instead of a table.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Args, Debug)]
pub struct DashboardArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3100)]
    pub port: u16,
    /// Address to listen on. The default keeps the dashboard to this machine; any other
    /// lets whoever reaches it see what your credentials see.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Yaml,
}

/// What a command asks for: a read, or a release action.
pub enum Request<'a> {
    Status(&'a StatusArgs),
    List(&'a ListArgs),
    Dashboard(&'a DashboardArgs),
    Migrate(&'a MigrateArgs),
    Eject(&'a EjectArgs),
    Act(ManualAction, Act<'a>),
}

impl Command {
    pub fn request(&self) -> Request<'_> {
        match self {
            Command::Status(args) => Request::Status(args),
            Command::List(args) => Request::List(args),
            Command::Dashboard(args) => Request::Dashboard(args),
            Command::Migrate(args) => Request::Migrate(args),
            Command::Eject(args) => Request::Eject(args),
            Command::Promote(p) if p.full => {
                Request::Act(ManualAction::PromoteFull, (&p.action).into())
            }
            Command::Promote(p) => Request::Act(ManualAction::Promote, (&p.action).into()),
            Command::Abort(args) => Request::Act(ManualAction::Abort, args.into()),
            Command::Retry(args) => Request::Act(ManualAction::Retry, args.into()),
            Command::Pause(args) => Request::Act(ManualAction::Pause, args.into()),
            Command::Resume(args) => Request::Act(ManualAction::Resume, args.into()),
        }
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::analysis::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration like 10s, 1m or 1m30s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-weir").chain(args.iter().copied()))
    }

    #[test]
    fn cluster_flags_go_before_or_after_the_command() {
        let cli = parse(&["-n", "shop", "status", "checkout", "--context", "prod"]).unwrap();
        assert_eq!(cli.target.namespace.as_deref(), Some("shop"));
        assert_eq!(cli.target.context.as_deref(), Some("prod"));
    }

    #[test]
    fn promote_full_is_its_own_action() {
        let cli = parse(&["promote", "--full", "checkout"]).unwrap();
        let Request::Act(action, args) = cli.command.request() else {
            panic!("promote is an action");
        };
        assert_eq!(action, ManualAction::PromoteFull);
        assert_eq!(args.subject, Subject::Microservice("checkout"));
        assert_eq!(args.timeout, Duration::from_secs(10));
    }

    #[test]
    fn promote_and_abort_take_a_release_group_instead_of_a_name() {
        let cli = parse(&["promote", "--group", "shop", "-n", "prod"]).unwrap();
        let Request::Act(ManualAction::Promote, args) = cli.command.request() else {
            panic!("promote is an action");
        };
        assert_eq!(args.subject, Subject::Group("shop"));
        assert_eq!(cli.target.namespace.as_deref(), Some("prod"));

        let cli = parse(&["promote", "--full", "--group", "shop"]).unwrap();
        let Request::Act(ManualAction::PromoteFull, args) = cli.command.request() else {
            panic!("promote --full is an action");
        };
        assert_eq!(args.subject, Subject::Group("shop"));

        let cli = parse(&["abort", "--group", "shop", "--no-wait"]).unwrap();
        let Request::Act(ManualAction::Abort, args) = cli.command.request() else {
            panic!("abort is an action");
        };
        assert_eq!(args.subject, Subject::Group("shop"));
        assert!(args.no_wait);
    }

    #[test]
    fn a_name_and_a_group_exclude_each_other_and_one_is_needed() {
        for args in [
            &["abort", "checkout", "--group", "shop"][..],
            &["promote", "--group", "shop", "checkout"],
            &["abort"],
            &["promote", "--full"],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let error = parse(&["abort", "checkout", "--group", "shop"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        let error = parse(&["abort"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn retry_pause_and_resume_take_a_name_only() {
        assert!(parse(&["retry", "--group", "shop"]).is_err());
        assert!(parse(&["pause", "--group", "shop"]).is_err());
        let cli = parse(&["resume", "checkout"]).unwrap();
        let Request::Act(ManualAction::Resume, args) = cli.command.request() else {
            panic!("resume is an action");
        };
        assert_eq!(args.subject, Subject::Microservice("checkout"));
    }

    #[test]
    fn the_wait_takes_a_duration() {
        let cli = parse(&["abort", "checkout", "--timeout", "1m30s"]).unwrap();
        let Request::Act(ManualAction::Abort, args) = cli.command.request() else {
            panic!("abort is an action");
        };
        assert_eq!(args.timeout.as_secs(), 90);
        assert!(parse(&["abort", "checkout", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        let error = parse(&["status", "checkout", "--bogus"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let error = parse(&["list", "-o", "wide"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
