use super::*;

const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).unwrap()
}

fn spec(scale_down: Option<ScaleDown>) -> MigrateFrom {
    MigrateFrom {
        deployment: "checkout".into(),
        scale_down,
    }
}

fn selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

fn slot(ready: i32, replicas: i32) -> SlotState {
    SlotState {
        exists: true,
        revision: Some("r1".into()),
        replicas,
        ready,
        settled: ready == replicas,
        observed: true,
    }
}

/// The world of one decision.
struct World {
    now: Timestamp,
    service: LiveService,
    old: Option<OldDeployment>,
    slot: SlotState,
    weir: BTreeMap<String, String>,
    action: Option<ManualAction>,
    generation: i64,
}

impl World {
    fn new() -> World {
        World {
            now: at(0),
            service: LiveService {
                consent: true,
                owned: false,
                selector: selector("old"),
                differs: None,
            },
            old: Some(OldDeployment {
                replicas: 4,
                pods: 4,
            }),
            slot: slot(0, 4),
            weir: selector("weir"),
            action: None,
            generation: 1,
        }
    }

    fn decide(&self, spec: &MigrateFrom, recorded: Option<&MigrationStatus>) -> Step {
        let inputs = Inputs {
            now: self.now,
            generation: Some(self.generation),
            service: Some(&self.service),
            old: self.old.as_ref(),
            slot: &self.slot,
            slot_selector: &self.weir,
            step: step_size(4, None),
            action: self.action.as_ref(),
        };
        decide(spec, recorded, &inputs)
    }

    /// Carries a step out as the cluster would.
    fn carry(&mut self, step: &Step) {
        if let SelectorStep::Set(selector) = &step.selector {
            self.service.selector = selector.clone();
        }
        match step.old {
            OldStep::Scale(n) => {
                self.old = Some(OldDeployment {
                    replicas: n,
                    pods: n,
                })
            }
            OldStep::Delete => self.old = None,
            OldStep::Leave => {}
        }
    }
}

#[test]
fn consent_is_the_spec_and_the_service_annotation_together() {
    let service = |consent, owned| LiveService {
        consent,
        owned,
        selector: selector("old"),
        differs: None,
    };
    let asked = spec(None);
    assert!(engaged(Some(&asked), None, Some(&service(true, false))));
    assert!(!engaged(Some(&asked), None, Some(&service(false, false))));
    assert!(!engaged(None, None, Some(&service(true, false))));
    assert!(
        !engaged(Some(&asked), None, None),
        "no Service, nothing to take over"
    );
    assert!(
        !engaged(Some(&asked), None, Some(&service(true, true))),
        "already Weir's"
    );
}

#[test]
fn the_service_switches_only_once_the_slot_is_ready_at_the_old_size() {
    let mut world = World::new();
    let first = world.decide(&spec(None), None);
    assert_eq!(first.status.phase, MigrationPhase::WaitingForPods);
    assert_eq!(first.status.original_replicas, 4);
    assert_eq!(first.status.original_selector, selector("old"));
    assert_eq!(first.slot_at_least, Some(4));
    assert_eq!(
        (first.selector.clone(), first.old.clone()),
        (SelectorStep::Leave, OldStep::Leave)
    );

    world.slot = slot(3, 4);
    let almost = world.decide(&spec(None), Some(&first.status));
    assert_eq!(
        almost.selector,
        SelectorStep::Leave,
        "3 of 4 ready: the old pods serve"
    );
    assert!(almost.status.message.contains("3 of 4 ready"));

    world.slot = slot(4, 4);
    world.service.differs = Some("port 80 is named web, not http".into());
    let different = world.decide(&spec(None), Some(&almost.status));
    assert_eq!(
        different.selector,
        SelectorStep::Leave,
        "a switch would rename a port in use"
    );
    assert!(different.status.message.contains("port 80 is named web"));
    world.service.differs = None;
    let switched = world.decide(&spec(None), Some(&almost.status));
    assert_eq!(switched.selector, SelectorStep::Set(selector("weir")));
    assert_eq!(
        switched.old,
        OldStep::Leave,
        "nothing is scaled down in the switch"
    );
    assert_eq!(switched.status.phase, MigrationPhase::ScalingDown);
    assert!(switched.guards_adoptable());
}

#[test]
fn the_old_deployment_goes_a_step_at_a_time_then_is_deleted() {
    let mut world = World::new();
    world.slot = slot(4, 4);
    let mut step = world.decide(&spec(None), None);
    world.carry(&step);
    let mut sizes = vec![];
    for tick in 1..40 {
        world.now = at(tick * 2);
        step = world.decide(&spec(None), Some(&step.status));
        world.carry(&step);
        if let OldStep::Scale(n) = step.old {
            sizes.push((tick * 2, n));
        }
        if step.status.phase == MigrationPhase::Completed {
            break;
        }
    }
    // A quarter of 4 a step, each at least STEP_INTERVAL after the last.
    assert_eq!(sizes, [(10, 3), (20, 2), (30, 1), (40, 0)]);
    assert_eq!(step.old, OldStep::Delete);
    assert_eq!(step.status.phase, MigrationPhase::Completed);
    assert_eq!(step.slot_at_least, None);
    assert_eq!(world.old, None);
    assert_eq!(world.service.selector, selector("weir"));
}

#[test]
fn on_success_scales_down_at_once_and_never_leaves_it_at_zero() {
    let mut world = World::new();
    world.slot = slot(4, 4);
    let switched = world.decide(&spec(Some(ScaleDown::OnSuccess)), None);
    world.carry(&switched);
    world.now = at(10);
    let down = world.decide(&spec(Some(ScaleDown::OnSuccess)), Some(&switched.status));
    assert_eq!(down.old, OldStep::Scale(0));

    let mut world = World::new();
    world.slot = slot(4, 4);
    world.old = Some(OldDeployment {
        replicas: 0,
        pods: 0,
    });
    let switched = world.decide(&spec(Some(ScaleDown::Never)), None);
    let kept = world.decide(&spec(Some(ScaleDown::Never)), Some(&switched.status));
    assert_eq!(kept.old, OldStep::Leave, "Never: left at 0, not deleted");
    assert_eq!(kept.status.phase, MigrationPhase::Completed);
}

#[test]
fn a_step_waits_for_the_last_one_to_finish_and_for_a_full_slot() {
    let mut world = World::new();
    world.slot = slot(4, 4);
    let switched = world.decide(&spec(None), None);
    world.carry(&switched);
    world.now = at(30);
    world.old = Some(OldDeployment {
        replicas: 3,
        pods: 4,
    });
    let terminating = world.decide(&spec(None), Some(&switched.status));
    assert_eq!(
        terminating.old,
        OldStep::Leave,
        "a pod of the last step still stops"
    );
    world.old = Some(OldDeployment {
        replicas: 3,
        pods: 3,
    });
    world.slot = slot(3, 4);
    let short = world.decide(&spec(None), Some(&switched.status));
    assert_eq!(short.old, OldStep::Leave, "the slot lost a pod: hold");
    assert_eq!(short.status.phase, MigrationPhase::ScalingDown);
}

#[test]
fn a_failing_slot_or_an_abort_puts_the_old_deployment_back_in_service() {
    let mut world = World::new();
    world.slot = slot(4, 4);
    let switched = world.decide(&spec(None), None);
    world.carry(&switched);
    world.now = at(10);
    let down = world.decide(&spec(None), Some(&switched.status));
    world.carry(&down);
    assert_eq!(down.old, OldStep::Scale(3));

    world.slot = slot(0, 4);
    let back = world.decide(&spec(None), Some(&down.status));
    assert_eq!(back.selector, SelectorStep::Set(selector("old")));
    assert_eq!(back.old, OldStep::Scale(4));
    assert_eq!(back.status.phase, MigrationPhase::RolledBack);
    assert!(back.note.as_ref().is_some_and(|n| n.warning));
    world.carry(&back);

    // It stays back, even with the slot ready again, until a retry.
    world.slot = slot(4, 4);
    let still = world.decide(&spec(None), Some(&back.status));
    assert_eq!(
        (still.selector.clone(), still.old.clone()),
        (SelectorStep::Leave, OldStep::Leave)
    );
    assert_eq!(still.status.phase, MigrationPhase::RolledBack);
    world.action = Some(ManualAction::Retry);
    let again = world.decide(&spec(None), Some(&still.status));
    assert_eq!(again.selector, SelectorStep::Set(selector("weir")));

    // An abort before the switch touches nothing of the old service.
    let mut world = World::new();
    let waiting = world.decide(&spec(None), None);
    world.action = Some(ManualAction::Abort);
    let aborted = world.decide(&spec(None), Some(&waiting.status));
    assert_eq!(aborted.status.phase, MigrationPhase::Aborted);
    assert_eq!(
        (aborted.selector, aborted.old),
        (SelectorStep::Leave, OldStep::Leave)
    );
}

#[test]
fn a_step_takes_what_the_disruption_budget_lets_go() {
    let pdb = |max: Option<IntOrString>, min: Option<IntOrString>| PodDisruptionBudgetSpec {
        max_unavailable: max,
        min_available: min,
        ..Default::default()
    };
    assert_eq!(step_size(8, None), 2);
    assert_eq!(step_size(1, None), 1);
    assert_eq!(step_size(8, Some(&pdb(Some(IntOrString::Int(3)), None))), 3);
    assert_eq!(
        step_size(8, Some(&pdb(Some(IntOrString::String("50%".into())), None))),
        4
    );
    assert_eq!(step_size(8, Some(&pdb(None, Some(IntOrString::Int(7))))), 1);
    assert_eq!(
        step_size(8, Some(&pdb(None, Some(IntOrString::String("90%".into()))))),
        1
    );
    assert_eq!(
        step_size(8, Some(&pdb(None, Some(IntOrString::Int(8))))),
        1,
        "at least one"
    );
}
