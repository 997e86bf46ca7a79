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
    // `range` is not available; a loop over an argument still hits the output cap.
    assert!(
        Template::compile("{% for i in range(10000) %}x{% endfor %}")
            .unwrap()
            .render(&input(&names, &args, None))
            .is_err()
    );
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
        "{% macro m() %}x{% endmacro %}",
        "{% with a = 1 %}{% endwith %}",
        "{% filter upper %}x{% endfilter %}",
        "{% include 'x' %}",
        "{{ 'x' * 1000 }}",
        "{% if args.a * 2 %}{% endif %}",
    ] {
        assert!(
            matches!(Template::compile(source), Err(TemplateError::Forbidden(_))),
            "{source}"
        );
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
