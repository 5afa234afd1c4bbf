//! The recorder and the table on a fake clock (exact, deterministic numbers), the tape's and the
//! modules' ranges on real ops, and the armed step of `--profile`.

use super::step::arm_with;
use super::table::{OpRow, OUTSIDE_OPS};
use super::*;
use crate::Error;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const MS: u64 = 1_000_000;

/// A clock the test moves by hand, in milliseconds.
fn fake_clock() -> (Rc<Cell<u64>>, recorder::Clock) {
    let t = Rc::new(Cell::new(0));
    let c = t.clone();
    (t, Box::new(move || c.get()))
}

fn at(t: &Cell<u64>, ms: u64) {
    t.set(ms * MS);
}

fn row<'a>(table: &'a Table, name: &str, phase: Phase) -> &'a OpRow {
    table
        .ops
        .iter()
        .find(|r| r.name == name && r.phase == phase)
        .unwrap_or_else(|| panic!("no row {name} [{phase:?}] in {table:#?}"))
}

/// One step with nested layers, nested ops, a backward charged to a layer and an optimizer:
/// every number of the table is known.
fn scripted_step() -> Table {
    let (t, clock) = fake_clock();
    let session = Session::start_with(clock, None).unwrap();
    at(&t, 1);
    let net = layer("net");
    let tag = current_layer();
    {
        let _c = op("conv2d");
        at(&t, 4);
    }
    {
        let _bn = layer("net.bn");
        let _b = op("bn_act");
        at(&t, 5);
        {
            // Nested in bn_act: counted for bn_act, not as a row of its own.
            let _s = op("sum");
            at(&t, 7);
        }
        at(&t, 9);
        drop(_b);
        at(&t, 10);
    }
    at(&t, 11);
    drop(net);
    at(&t, 12);
    {
        let _p = phase(Phase::Backward);
        at(&t, 13);
        {
            let _b = backward("conv2d", tag);
            at(&t, 14);
            let _k = op("conv2d_backward_input");
            at(&t, 16);
            drop(_k);
            at(&t, 17);
        }
        {
            let _a = op("add");
            at(&t, 18);
        }
        at(&t, 20);
    }
    at(&t, 21);
    {
        let _p = phase(Phase::Optimizer);
        at(&t, 22);
        for ms in [23, 24] {
            let _s = op("scale");
            at(&t, ms);
        }
        at(&t, 25);
    }
    at(&t, 27);
    Table::new(&session.finish().unwrap())
}

#[test]
fn table_of_a_scripted_step_has_exact_times() {
    let table = scripted_step();
    assert_eq!(table.total_ns, 27 * MS);
    assert!(!table.synchronised);
    let phases: Vec<(Phase, u64)> = table.phases.clone();
    assert_eq!(
        phases,
        vec![
            (Phase::Forward, 10 * MS),
            (Phase::Backward, 8 * MS),
            (Phase::Optimizer, 4 * MS),
            (Phase::Other, 5 * MS),
        ]
    );
    let expect = [
        ("conv2d", Phase::Forward, Some(1), 3),
        ("bn_act", Phase::Forward, Some(1), 5),
        (OUTSIDE_OPS, Phase::Forward, None, 2),
        ("conv2d backward", Phase::Backward, Some(1), 4),
        ("add", Phase::Backward, Some(1), 1),
        (OUTSIDE_OPS, Phase::Backward, None, 3),
        ("scale", Phase::Optimizer, Some(2), 2),
        (OUTSIDE_OPS, Phase::Optimizer, None, 2),
        (OUTSIDE_OPS, Phase::Other, None, 5),
    ];
    assert_eq!(table.ops.len(), expect.len(), "{table:#?}");
    for (name, ph, calls, ms) in expect {
        let r = row(&table, name, ph);
        assert_eq!((r.calls, r.ns), (calls, ms * MS), "{name} [{ph:?}]");
    }
    // Sorted longest first; the rows partition the step.
    assert!(table.ops.windows(2).all(|w| w[0].ns >= w[1].ns));
    assert_eq!(table.ops.iter().map(|r| r.ns).sum::<u64>(), table.total_ns);
    assert_eq!(
        table.phases.iter().map(|p| p.1).sum::<u64>(),
        table.total_ns
    );
    // Self times: net 10 ms less its child's 6 ms; the conv backward it recorded is its own.
    let layers: Vec<(&str, usize, u64, u64)> = table
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.calls, l.forward_ns, l.backward_ns))
        .collect();
    assert_eq!(
        layers,
        vec![("net", 1, 4 * MS, 4 * MS), ("net.bn", 1, 6 * MS, 0)]
    );
}

#[test]
fn printed_table_lists_phases_ops_and_layers() {
    let text = scripted_step().to_string();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [
        "step: 27.000 ms",
        "forward 10.000 37.04",
        "other 5.000 18.52",
        "conv2d backward backward 1 4.000 14.81",
        "scale optimizer 2 2.000 7.41",
        "(outside ops) other - 5.000 18.52",
        "net 1 4.000 4.000 29.63",
        "layers cover 51.85% of the step",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "no line {want:?} in\n{text}"
        );
    }
}

#[test]
fn nothing_is_recorded_without_a_session() {
    {
        let _l = layer("net");
        assert_eq!(current_layer(), None);
        let _o = op("conv2d");
    }
    let (t, clock) = fake_clock();
    let session = Session::start_with(clock, None).unwrap();
    at(&t, 2);
    let p = session.finish().unwrap();
    assert!(p.events.is_empty() && p.layers.is_empty());
    assert_eq!(p.total, 2 * MS);
}

#[test]
fn one_session_per_thread() {
    let (_, clock) = fake_clock();
    let first = Session::start_with(clock, None).unwrap();
    let (_, clock) = fake_clock();
    assert!(matches!(
        Session::start_with(clock, None),
        Err(Error::Config(m)) if m.contains("already running")
    ));
    first.finish().unwrap();
    let (_, clock) = fake_clock();
    let again = Session::start_with(clock, None).unwrap();
    // Dropping a session unfinished discards it and frees the thread.
    drop(again);
    let (_, clock) = fake_clock();
    Session::start_with(clock, None).unwrap().finish().unwrap();
}

#[test]
fn ranges_and_layers_of_an_earlier_session_are_ignored() {
    let (t, clock) = fake_clock();
    let a = Session::start_with(clock, None).unwrap();
    let old_layer = layer("old");
    let old_tag = current_layer();
    assert!(old_tag.is_some());
    at(&t, 3);
    let pa = a.finish().unwrap();
    // Still open at the finish: ends there.
    assert_eq!((pa.events[0].start, pa.events[0].end), (0, 3 * MS));

    let (t, clock) = fake_clock();
    let b = Session::start_with(clock, None).unwrap();
    let new = op("new");
    at(&t, 1);
    drop(old_layer);
    let back = backward("conv2d", old_tag);
    at(&t, 2);
    drop(back);
    drop(new);
    let pb = b.finish().unwrap();
    assert_eq!(pb.events.len(), 2);
    assert_eq!(pb.events[0].what, What::Op("new"));
    assert_eq!((pb.events[0].start, pb.events[0].end), (0, 2 * MS));
    assert_eq!(
        pb.events[1].what,
        What::Backward {
            op: "conv2d",
            layer: None
        }
    );
}

#[test]
fn the_device_is_synchronised_at_every_boundary() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let sync: recorder::SyncFn = Box::new(move || {
        c.set(c.get() + 1);
        Ok(())
    });
    let (_, clock) = fake_clock();
    let s = Session::start_with(clock, Some(sync)).unwrap();
    {
        let _a = op("a");
        let _b = op("b");
    }
    let p = s.finish().unwrap();
    // Two boundaries per range, and the finish.
    assert_eq!(calls.get(), 5);
    assert!(p.synchronised && Table::new(&p).synchronised);

    let failing: recorder::SyncFn = Box::new(|| Err(Error::Cuda("lost the device".into())));
    let (_, clock) = fake_clock();
    let s = Session::start_with(clock, Some(failing)).unwrap();
    drop(op("a"));
    assert!(matches!(s.finish(), Err(Error::Cuda(m)) if m == "lost the device"));
}

#[test]
fn tape_backward_is_charged_to_the_module_that_recorded_it() {
    use crate::autograd::Tape;
    use crate::nn::{BatchNorm, Conv2d, Ctx};
    use crate::params::ParamStore;
    use crate::{ops, DType, Device, Rng, Tensor};

    let mut store = ParamStore::new(DType::F32, crate::testing::fresh_seed("profile_tape"));
    let conv = Conv2d::new(&mut store, "m.conv", 3, 4, 3, 1).unwrap();
    let bn = BatchNorm::new(&mut store, "m.bn", 4, false, true).unwrap();
    let x = Tensor::randn(&[2, 5, 5, 3], 1.0, DType::F32, &mut Rng::new(3)).unwrap();

    let session = Session::start(Device::Cpu).unwrap();
    let mut tape = Tape::new();
    let xv = tape.constant(x);
    let mut ctx = Ctx::new(&mut tape, &mut store, true);
    let h = conv.forward(&mut ctx, &xv).unwrap();
    let h = bn.forward_relu(&mut ctx, &h).unwrap();
    let loss = ops::sum(&mut tape, &h).unwrap();
    tape.backward(&loss, &mut store).unwrap();
    let p = session.finish().unwrap();

    let id = |name: &str| p.layers.iter().position(|l| l == name).unwrap() as u32;
    let charged = |op: &str| {
        p.events.iter().find_map(|e| match e.what {
            What::Backward { op: o, layer } if o == op => Some(layer),
            _ => None,
        })
    };
    assert_eq!(charged("conv2d"), Some(Some(id("m.conv"))));
    assert_eq!(charged("bn_act"), Some(Some(id("m.bn"))));
    // The loss was recorded outside any module.
    assert_eq!(charged("sum"), Some(None));
    // Kernels run inside their module's range: conv2d's dispatch is a child of m.conv.
    let conv_range = p
        .events
        .iter()
        .position(|e| e.what == What::Layer(id("m.conv")))
        .unwrap();
    assert!(p
        .events
        .iter()
        .any(|e| e.what == What::Op("conv2d") && e.parent == Some(conv_range)));

    let table = Table::new(&p);
    for (name, ph) in [
        ("conv2d", Phase::Forward),
        ("bn_act", Phase::Forward),
        ("conv2d backward", Phase::Backward),
        ("bn_act backward", Phase::Backward),
        ("sum backward", Phase::Backward),
    ] {
        assert_eq!(row(&table, name, ph).calls.map(|c| c > 0), Some(true));
    }
    assert_eq!(table.ops.iter().map(|r| r.ns).sum::<u64>(), table.total_ns);
    let conv_row = table.layers.iter().find(|l| l.name == "m.conv").unwrap();
    assert!(conv_row.forward_ns > 0 && conv_row.backward_ns > 0);
}

type Reports = Rc<RefCell<Vec<(usize, Result<Table, String>)>>>;

fn arm_fake(target: usize) -> (Rc<Cell<u64>>, Reports) {
    let t = Rc::new(Cell::new(0));
    let reports: Reports = Rc::default();
    let (c, r) = (t.clone(), reports.clone());
    arm_with(
        target,
        Box::new(move || {
            let c = c.clone();
            Session::start_with(Box::new(move || c.get()), None)
        }),
        Box::new(move |step, table| {
            r.borrow_mut()
                .push((step, table.map_err(|e| e.to_string())))
        }),
    )
    .unwrap();
    (t, reports)
}

#[test]
fn armed_profile_covers_exactly_the_chosen_step() {
    let (t, reports) = arm_fake(2);
    at(&t, 1);
    drop(op("step 1 work"));
    drop(optimizer_step()); // end of step 1: the session starts here
    at(&t, 2);
    {
        let _w = op("step 2 work");
        at(&t, 5);
    }
    {
        let _o = optimizer_step();
        at(&t, 6);
    } // end of step 2: the table
    drop(op("step 3 work"));
    drop(optimizer_step());

    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    let (step, table) = &reports[0];
    let table = table.as_ref().unwrap();
    assert_eq!(*step, 2);
    // From the end of step 1's update (1 ms) to the end of step 2's (6 ms).
    assert_eq!(table.total_ns, 5 * MS);
    assert_eq!(row(table, "step 2 work", Phase::Forward).ns, 3 * MS);
    assert_eq!(table.phases[3], (Phase::Other, MS));
    assert!(table.ops.iter().all(|r| !r.name.starts_with("step 1")));
    assert_eq!(table.phases[2], (Phase::Optimizer, MS));
    // Disarmed: the thread is free for another session.
    let (_, clock) = fake_clock();
    Session::start_with(clock, None).unwrap().finish().unwrap();
}

#[test]
fn arming_step_one_starts_at_once_and_step_zero_is_refused() {
    let (t, reports) = arm_fake(1);
    at(&t, 4);
    drop(optimizer_step());
    assert_eq!(reports.borrow().len(), 1);
    assert_eq!(reports.borrow()[0].1.as_ref().unwrap().total_ns, 4 * MS);
    let err = arm_with(
        0,
        Box::new(|| unreachable!("a step 0 never starts")),
        Box::new(|_, _| {}),
    );
    assert!(matches!(err, Err(Error::Config(_))));
}
