//! Template compile, render and sandbox tests.

use super::*;
use alloy::primitives::{I256, U256};

fn input<'a>(
    names: &'a [&'a str],
    args: &'a [DynSolValue],
    explorer: Option<&'a str>,
) -> RenderInput<'a> {
    RenderInput {
        event_name: "Swap",
        arg_names: names,
        args,
        tx_hash: B256::repeat_byte(0x12),
        block_number: 42,
        block_hash: B256::ZERO,
        log_address: Address::repeat_byte(0xaa),
        log_index: 3,
        chain_id: 1,
        chain_name: "mainnet",
        explorer_url: explorer,
    }
}

#[test]
fn units_is_exact() {
    assert_eq!(
        units(Value::from("1500000000000000000"), 18).unwrap(),
        "1.5"
    );
    assert_eq!(units(Value::from("-2500000000"), 6).unwrap(), "-2500");
    assert_eq!(units(Value::from("5"), 3).unwrap(), "0.005");
    assert_eq!(units(Value::from("0"), 18).unwrap(), "0");
    assert_eq!(units(Value::from(123), 0).unwrap(), "123");
    assert!(units(Value::from("1e5"), 2).is_err());
}

#[test]
fn renders_context_and_filters() {
    let t = Template::compile(
        "{{ event.name }} {{ args.amount | units(6) }} by {{ args.who | short }} on {{ chain.name }} #{{ block.number }} {{ tx.hash | explorer_tx }}",
    )
    .unwrap();
    let names = ["amount", "who"];
    let args = [
        DynSolValue::Int(I256::try_from(-1_500_000i64).unwrap(), 256),
        DynSolValue::Address(Address::repeat_byte(0xab)),
    ];
    let text = t
        .render(&input(&names, &args, Some("https://etherscan.io/")))
        .unwrap();
    assert_eq!(
        text,
        format!(
            "Swap -1.5 by 0xABaB…ABaB on mainnet #42 https://etherscan.io/tx/{}",
            B256::repeat_byte(0x12)
        )
    );
}

#[test]
fn unknown_variables_and_runaway_output_fail() {
    let names = ["amount"];
    let args = [DynSolValue::Uint(U256::from(1u8), 256)];
    let typo = Template::compile("{{ args.amout }}").unwrap();
    assert!(matches!(
        typo.render(&input(&names, &args, None)),
        Err(TemplateError::Render(_))
    ));
    // `range` is a call, and calls are refused.
    assert!(matches!(
        Template::compile("{% for i in range(10000) %}x{% endfor %}"),
        Err(TemplateError::Forbidden(_))
    ));
    // Loops nest freely over inputs, but fuel and the output cap stop them.
    let list: Vec<_> = (0..200u32)
        .map(|i| DynSolValue::Uint(U256::from(i), 256))
        .collect();
    let names = ["xs"];
    let args = [DynSolValue::Array(list)];
    let nested = Template::compile(
        "{% for a in args.xs %}{% for b in args.xs %}{% for c in args.xs %}{{ c }}{% endfor %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    assert!(nested.render(&input(&names, &args, None)).is_err());
    assert!(Template::compile("{{ unclosed").is_err());
}

#[test]
fn only_used_parts_are_built_but_whole_objects_still_work() {
    let names = ["a", "b"];
    let args = [DynSolValue::Bool(true), DynSolValue::String("x".into())];
    let t =
        Template::compile("{% for k, v in args | items %}{{ k }}={{ v }};{% endfor %}{{ args.a }}")
            .unwrap();
    assert_eq!(t.used.args, None);
    assert_eq!(
        t.render(&input(&names, &args, None)).unwrap(),
        "a=True;b=x;True"
    );
    let t = Template::compile("{{ args.b }} {{ log.index }}").unwrap();
    assert!(!t.used.tx && t.used.log);
    assert_eq!(t.render(&input(&names, &args, None)).unwrap(), "x 3");
    let t = Template::compile("{% if tx is defined %}{{ tx.hash | short }}{% endif %}").unwrap();
    assert_eq!(
        t.render(&input(&names, &args, None)).unwrap(),
        "0x1212…1212"
    );
}

#[test]
fn constructs_that_could_exhaust_memory_are_rejected() {
    for source in [
        "{% set s = 'x' %}{{ s }}",
        "{%- set s = 'x' -%}",
        "{% with a = 1 %}{% endwith %}",
        "{% filter upper %}x{% endfilter %}",
        "{{ 'x' * 1000 }}",
        "{% if args.a * 2 %}{% endif %}",
        "{{ 2 ** 100 }}",
        "{{ loop.cycle('a') }}",
        "{% for x in args.l recursive %}{{ loop(x) }}{% endfor %}",
    ] {
        assert!(
            matches!(Template::compile(source), Err(TemplateError::Forbidden(_))),
            "{source}"
        );
    }
    // Statements this build of the engine does not even parse.
    for source in ["{% macro m() %}x{% endmacro %}", "{% include 'x' %}"] {
        assert!(Template::compile(source).is_err(), "{source}");
    }
    // Stars and statement-like text in literals, comments and plain text are fine.
    let t =
        Template::compile("*bold* {# {% set %} #}{{ '* {% set %}' }}{% if true %}ok{% endif %}")
            .unwrap();
    let names = ["a"];
    let args = [DynSolValue::Bool(true)];
    assert_eq!(
        t.render(&input(&names, &args, None)).unwrap(),
        "*bold* * {% set %}ok"
    );
    // Growing filters and globals simply do not exist.
    for source in [
        "{{ 'a' | replace('a', 'bb') }}",
        "{{ namespace() }}",
        "{{ 'a' | indent(9) }}",
    ] {
        let result = Template::compile(source).and_then(|t| t.render(&input(&names, &args, None)));
        assert!(result.is_err(), "{source}");
    }
}

/// The attacker's template: nested loops that rebind a string to itself doubled, `depth` deep
/// (depth 28 asked for 2 GiB and killed the process).
fn doubling_bomb(depth: usize, doubling: &str) -> String {
    let mut source = String::from("{% for s in ['ab'] %}");
    for _ in 0..depth {
        source.push_str(&format!("{{% for s in [{doubling}] %}}"));
    }
    source.push_str("{{ s | length }}");
    for _ in 0..=depth {
        source.push_str("{% endfor %}");
    }
    source
}

#[test]
fn doubling_bombs_are_refused_before_rendering() {
    for depth in [1, 20, 26, 28] {
        for doubling in ["s ~ s", "s + s", "[s, s] | join", "(s ~ s) | upper"] {
            let source = doubling_bomb(depth, doubling);
            assert!(
                matches!(Template::compile(&source), Err(TemplateError::Forbidden(_))),
                "{depth} {doubling}"
            );
        }
    }
    // Rebinding without growth stays allowed.
    let t = Template::compile(
        "{% for s in args.words %}{% for s in s | list %}{{ s }}{% endfor %}{% endfor %}",
    )
    .unwrap();
    let names = ["words"];
    let args = [DynSolValue::Array(vec![
        DynSolValue::String("ab".into()),
        DynSolValue::String("c".into()),
    ])];
    assert_eq!(t.render(&input(&names, &args, None)).unwrap(), "abc");
}

#[test]
fn growing_filters_and_concatenations_are_capped() {
    let names = ["s"];
    let args = [DynSolValue::String("x".repeat(3000))];
    // Joining 3,000 characters with a 3,000-character separator would be 9 MB.
    let t = Template::compile("{{ args.s | join(args.s) | length }}").unwrap();
    assert!(matches!(
        t.render(&input(&names, &args, None)),
        Err(TemplateError::Render(_))
    ));
    // `list` and `string` alternate to grow five-fold per round; the cap stops the second.
    let t = Template::compile("{{ args.s | list | string | list | string | length }}").unwrap();
    assert!(t.render(&input(&names, &args, None)).is_err());
    let many = vec!["args.s"; sandbox::MAX_CONCATENATIONS + 2].join(" ~ ");
    assert!(matches!(
        Template::compile(&format!("{{{{ {many} }}}}")),
        Err(TemplateError::Forbidden(_))
    ));
    let few = ["args.s"; 3].join(" ~ ");
    let t = Template::compile(&format!("{{{{ ({few}) | length }}}}")).unwrap();
    assert_eq!(t.render(&input(&names, &args, None)).unwrap(), "9000");
}

#[test]
fn inputs_are_cut_and_cleaned() {
    let names = ["s", "b", "l"];
    let args = [
        DynSolValue::String(format!("a\0b{}", "y".repeat(10_000))),
        DynSolValue::Bytes(vec![0xab; 10_000]),
        DynSolValue::Array(vec![DynSolValue::Bool(true); 1000]),
    ];
    let t = Template::compile(
        "{{ args.s[:3] }} {{ args.s | length }} {{ args.b | length }} {{ args.l | length }}",
    )
    .unwrap();
    let text = t.render(&input(&names, &args, None)).unwrap();
    let (head, counts) = text.split_once(' ').unwrap();
    assert_eq!(head, "a\u{FFFD}b");
    let counts: Vec<usize> = counts.split(' ').map(|n| n.parse().unwrap()).collect();
    assert!(
        counts[0] <= MAX_OUTPUT_BYTES && counts[0] > 4000,
        "{counts:?}"
    );
    assert!(
        counts[1] <= MAX_OUTPUT_BYTES && counts[1] > 4000,
        "{counts:?}"
    );
    assert_eq!(counts[2], filters::MAX_ARG_ITEMS);
}

#[test]
fn renders_stop_at_the_first_filter_past_the_time_limit() {
    let names = ["s"];
    let args = [DynSolValue::String("abc".into())];
    let mut t = Template::compile("{% for c in args.s %}{{ c | upper }}{% endfor %}").unwrap();
    assert_eq!(t.render(&input(&names, &args, None)).unwrap(), "ABC");
    // A limit already reached: the first filter call ends the render.
    t.time_limit = std::time::Duration::ZERO;
    assert!(matches!(
        t.render(&input(&names, &args, None)),
        Err(TemplateError::TooSlow)
    ));
    // Without filters nothing checks the clock; fuel and the value limits bound such renders.
    let plain = Template::compile("{% for c in args.s %}{{ c }}{% endfor %}").unwrap();
    assert_eq!(plain.render(&input(&names, &args, None)).unwrap(), "abc");
}
