//! The subscript grammar of `index` ops: what parses, what prints, and the errors.

use crate::index::{IndexExpr, IndexItem};
use expect_test::expect;

fn parse(input: &str) -> String {
    match input.parse::<IndexExpr>() {
        Ok(expr) => expr.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn index_grammar() {
    expect!["[1:, :, -1]"].assert_eq(&parse("[1:, :, -1]"));
    expect!["[1:, ::2, -1]"].assert_eq(&parse("[1:, ::2, -1]"));
    expect!["[..., None, 0]"].assert_eq(&parse("..., np.newaxis, 0"));
    expect!["[[0, 2]]"].assert_eq(&parse("[[0, 2]]"));
    expect!["[0, 2]"].assert_eq(&parse("[0, 2]"));
    expect!["[[True, False, True], 1:3]"].assert_eq(&parse("[[True, False, True], 1:3]"));
    expect!["[[[0, 1], [1, 0]]]"].assert_eq(&parse("[[[0, 1], [1, 0]]]"));
    expect!["[::-1]"].assert_eq(&parse("[::-1]"));
    expect!["[]"].assert_eq(&parse("[]"));
    expect![[r#"error: cannot parse index "[::0]" at byte 4: slice step cannot be zero"#]].assert_eq(&parse("[::0]"));
    expect![[r#"error: cannot parse index "[1, 2" at byte 5: expected `,` or `]` in an index list"#]]
        .assert_eq(&parse("[1, 2"));
    expect![[r#"error: cannot parse index "[os.system('x')]" at byte 1: unknown name (only None, newaxis, True, False, Ellipsis)"#]]
        .assert_eq(&parse("[os.system('x')]"));
    expect![[r#"error: cannot parse index "[[1, [2]]]" at byte 8: index list mixes lists and numbers"#]]
        .assert_eq(&parse("[[1, [2]]]"));
    expect![[r#"error: cannot parse index "[[1, True]]" at byte 10: index list mixes integers and bools"#]]
        .assert_eq(&parse("[[1, True]]"));
    assert_eq!("[2:5]".parse::<IndexExpr>().unwrap().0, vec![IndexItem::range(2, 5)]);
}
