//! The canonical form of a Rust body: the tokens every `rustfmt` output of
//! the same code shares, whatever its `max_width`.
//!
//! rustfmt changes more than whitespace between widths. Each rewrite below
//! undoes one such change, and each keeps the code's meaning (no rewrite
//! gives two bodies with different meanings one canonical form; the
//! serialisation, [`super::v1::write_canonical`], leaves punctuation spacing
//! out, so `a && b` and `a & &b`, a logical and a bitwise and of a
//! reference, share one: rustfmt writes `&&x` for `& &x` in other places,
//! and telling the two apart would take a parser):
//! - a trailing comma before a closing delimiter is dropped (rustfmt adds it
//!   when it wraps a list vertically), except in a one-element tuple `(x,)`,
//!   where it makes the tuple;
//! - a `,` just before a `>` (a vertical generic list) is dropped;
//! - a match arm's body `{ expr }` holding a single expression becomes
//!   `expr` (rustfmt adds the braces when the arm does not fit on its line),
//!   a leading `|` before the arm's pattern is dropped, and every arm is
//!   followed by a comma exactly when its body is not a block (rustfmt's own
//!   rule, so a formatted match keeps its tokens);
//! - a closure's body `{ expr }` holding a single expression becomes `expr`,
//!   when nothing follows the closure but `,`, `;` or the end of its group;
//! - `((x))` becomes `(x)` where the parentheses are not a call's;
//! - an empty statement (`;;`) is dropped, and `return`, `break` or
//!   `continue` ending a block gets its `;`;
//! - a run of `use` declarations is sorted, the items of each `{…}` list are
//!   sorted, and a list of one item loses its braces (`a::{b}` → `a::b`); a
//!   declaration's attributes go with it (rustfmt sorts those too);
//! - the parameter list of a `fn` (or the fields of a `struct`) with
//!   generics loses its trailing comma like a call's, and so does a `where`
//!   clause before its `{`;
//! - `extern "C"` is `extern` (the ABI `extern` means; rustfmt writes it);
//! - `vec!(…)` and `vec!{…}` are `vec![…]`, and an empty statement after a
//!   `while` or `for` loop is dropped (rustfmt does both; not after `loop`,
//!   whose `;` can discard a value).
//!
//! This is the fourth definition. The third is this one without three
//! rules, found by probes (rounds 16 and 18): a `(…)` after `?` is an
//! argument list (`lookup(0)?(arg,)`, which rustfmt writes with that comma
//! when it wraps the call: the comma was kept as if it made a one-element
//! tuple); a `(…)` after a label or lifetime is not one (`break 'a (5,)`,
//! a tuple, and `break 'a (5)` were one form); a closure's body
//! `{ return expr; }` is `return expr` (rustfmt writes the one at one
//! width, the other at another). [`third`] computes the third, with the
//! same code and those rules off. [`super::v2`], kept unchanged, lacks the
//! last three rules and the attributes' place in a `use` run.
//!
//! Comments are not tokens, and doc comments are dropped when the tokens are
//! serialised ([`super::v1::write_canonical`]), so neither counts.

use std::cell::Cell;

use proc_macro2::{Delimiter, Group, Punct, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

use super::v1;

thread_local! {
    /// Whether the fourth definition's rules apply (see the module's
    /// documentation): off only while [`third`] computes the third's.
    static FOURTH_DEFINITION: Cell<bool> = const { Cell::new(true) };
}

/// The canonical form of `tokens`.
pub fn normalize(tokens: TokenStream) -> TokenStream {
    let list: Vec<TokenTree> = tokens.into_iter().collect();
    normalize_list(&list).into_iter().collect()
}

/// The third definition's canonical form of `tokens` (see the module's
/// documentation): stored in databases migrated before the fourth, so
/// carried as a former checksum.
pub fn third(tokens: TokenStream) -> TokenStream {
    FOURTH_DEFINITION.with(|rule| rule.set(false));
    let canonical = normalize(tokens);
    FOURTH_DEFINITION.with(|rule| rule.set(true));
    canonical
}

/// Keywords after which a parenthesised group is not a call's argument list
/// (a tuple, a pattern, a type or a parenthesised expression follows).
const NOT_A_CALLEE: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "for", "if",
    "impl", "in", "let", "loop", "match", "move", "mut", "ref", "return", "static", "type",
    "unsafe", "where", "while", "yield",
];

/// Keywords after which a `|` opens a closure rather than being an operator.
const BEFORE_A_CLOSURE: &[&str] = &[
    "async", "break", "else", "if", "in", "let", "match", "move", "return", "static", "while",
    "yield",
];

fn normalize_list(tokens: &[TokenTree]) -> Vec<TokenTree> {
    let mut out: Vec<TokenTree> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if starts_statement(tokens, i) {
            if let Some((end, run)) = use_run(tokens, i) {
                out.extend(run);
                i = end;
                continue;
            }
        }
        match &tokens[i] {
            TokenTree::Ident(ident) if ident == "match" => {
                if let Some((end, rewritten)) = match_expression(tokens, i) {
                    out.extend(rewritten);
                    i = end;
                    continue;
                }
                out.push(tokens[i].clone());
            }
            TokenTree::Punct(p) if p.as_char() == '|' && opens_closure(tokens, i) => {
                if let Some((end, rewritten)) = closure(tokens, i) {
                    out.extend(rewritten);
                    i = end;
                    continue;
                }
                out.push(tokens[i].clone());
            }
            TokenTree::Punct(p)
                if p.as_char() == ','
                    && matches!(tokens.get(i + 1), Some(TokenTree::Punct(q)) if q.as_char() == '>') =>
                {}
            // A `where` clause's trailing comma, before the item's body.
            TokenTree::Punct(p)
                if p.as_char() == ','
                    && matches!(tokens.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace)
                    && in_where_clause(tokens, i) => {}
            // `extern "C"` is what `extern` alone means.
            TokenTree::Literal(literal)
                if is_ident(out.last(), "extern") && literal.to_string() == "\"C\"" => {}
            TokenTree::Punct(p)
                if p.as_char() == ';'
                    && (out.is_empty() || is_punct(out.last(), ';') || ends_a_loop(&out)) => {}
            TokenTree::Group(group) => {
                let group = normalize_group(group, call_like(tokens, i));
                out.push(vec_in_brackets(&out, group));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out
}

/// A group with its content normalised, and its own trailing comma, nested
/// parentheses and block-ending `;` handled.
fn normalize_group(group: &Group, call: bool) -> TokenTree {
    let inner: Vec<TokenTree> = group.stream().into_iter().collect();
    let mut content = normalize_list(&inner);
    match group.delimiter() {
        Delimiter::Brace => {
            drop_trailing_comma(&mut content);
            terminate_jump(&mut content);
        }
        Delimiter::Bracket => drop_trailing_comma(&mut content),
        Delimiter::Parenthesis => {
            if call || depth0_commas(&content) > 1 {
                drop_trailing_comma(&mut content);
            }
            // `((x))` is `(x)`; `f((x, y))` is not `f(x, y)`.
            if !call && content.len() == 1 {
                if let TokenTree::Group(only) = &content[0] {
                    if only.delimiter() == Delimiter::Parenthesis {
                        return content.remove(0);
                    }
                }
            }
        }
        Delimiter::None => {}
    }
    TokenTree::Group(Group::new(group.delimiter(), content.into_iter().collect()))
}

fn drop_trailing_comma(content: &mut Vec<TokenTree>) {
    if is_punct(content.last(), ',') {
        content.pop();
    }
}

/// `{ …; return x }` → `{ …; return x; }` (also `break` and `continue`).
fn terminate_jump(content: &mut Vec<TokenTree>) {
    if content.is_empty() || is_punct(content.last(), ';') {
        return;
    }
    let start = content
        .iter()
        .rposition(|t| is_punct(Some(t), ';'))
        .map_or(0, |semi| semi + 1);
    // The last statement: after the last `;`, possibly after block
    // statements (`if c { … } return x`), which end at their `}`.
    let ends_with_jump = (start..content.len()).any(|k| {
        matches!(&content[k], TokenTree::Ident(i) if i == "return" || i == "break" || i == "continue")
            && (k == start
                || matches!(&content[k - 1], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace))
    });
    if ends_with_jump {
        content.push(TokenTree::Punct(Punct::new(';', Spacing::Alone)));
    }
}

fn depth0_commas(content: &[TokenTree]) -> usize {
    content.iter().filter(|t| is_punct(Some(t), ',')).count()
}

fn is_punct(token: Option<&TokenTree>, c: char) -> bool {
    matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn is_ident(token: Option<&TokenTree>, name: &str) -> bool {
    matches!(token, Some(TokenTree::Ident(i)) if i == name)
}

/// Whether the parenthesised group at `i` is an argument list: a call, a
/// macro call or a tuple struct, whose trailing comma never counts.
fn call_like(tokens: &[TokenTree], i: usize) -> bool {
    let Some(previous) = i.checked_sub(1).map(|p| &tokens[p]) else {
        return false;
    };
    match previous {
        TokenTree::Ident(ident) => {
            // `'a (…)`: a label or lifetime, then a tuple or a type.
            let after_a_label =
                i >= 2 && is_punct(tokens.get(i - 2), '\'') && FOURTH_DEFINITION.with(Cell::get);
            !(after_a_label || NOT_A_CALLEE.contains(&ident.to_string().as_str()))
        }
        TokenTree::Punct(p) if p.as_char() == '!' => true,
        // `f()?(x)`: nothing but a call follows `?` with `(`.
        TokenTree::Punct(p) if p.as_char() == '?' => FOURTH_DEFINITION.with(Cell::get),
        TokenTree::Punct(p) if p.as_char() == '>' => ends_call_generics(tokens, i - 1),
        TokenTree::Group(g) => g.delimiter() != Delimiter::Brace,
        _ => false,
    }
}

/// `vec!(…)` and `vec!{…}` are `vec![…]` (rustfmt writes them so).
fn vec_in_brackets(out: &[TokenTree], group: TokenTree) -> TokenTree {
    let after_vec =
        out.len() >= 2 && is_punct(out.last(), '!') && is_ident(out.get(out.len() - 2), "vec");
    match group {
        TokenTree::Group(g) if after_vec && g.delimiter() != Delimiter::Bracket => {
            TokenTree::Group(Group::new(Delimiter::Bracket, g.stream()))
        }
        other => other,
    }
}

/// Whether `out` ends with a `while` or `for` loop statement (its body the
/// last token): a `;` after it is an empty statement, which rustfmt drops.
/// (Not after `loop`, which can give a value.)
fn ends_a_loop(out: &[TokenTree]) -> bool {
    if !matches!(out.last(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace) {
        return false;
    }
    // The statement's first token: after the last `;` or block before the body.
    let body = out.len() - 1;
    let start = out[..body]
        .iter()
        .rposition(|t| {
            is_punct(Some(t), ';')
                || matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)
        })
        .map_or(0, |end| end + 1);
    // A label first: `'outer: while …`.
    let first = if is_punct(out.get(start), '\'') && is_punct(out.get(start + 2), ':') {
        start + 3
    } else {
        start
    };
    first < body && (is_ident(out.get(first), "while") || is_ident(out.get(first), "for"))
}

/// Whether the `,` at `i` ends a `where` clause: one is open since the
/// last statement or block of the list.
fn in_where_clause(tokens: &[TokenTree], i: usize) -> bool {
    for token in tokens[..i].iter().rev() {
        match token {
            TokenTree::Ident(ident) if ident == "where" => return true,
            TokenTree::Punct(p) if p.as_char() == ';' => return false,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => return false,
            _ => {}
        }
    }
    false
}

/// Whether the `>` at `k` closes a `::<…>` (a call follows) or the
/// generics of a `fn` or a `struct` (its parameters or fields follow): a
/// list whose trailing comma never makes a tuple.
fn ends_call_generics(tokens: &[TokenTree], k: usize) -> bool {
    let arrow = |j: usize| {
        j > 0
            && matches!(&tokens[j - 1], TokenTree::Punct(p)
                if (p.as_char() == '-' || p.as_char() == '=') && p.spacing() == Spacing::Joint)
    };
    if arrow(k) {
        return false;
    }
    let mut depth = 0usize;
    let mut j = k + 1;
    while j > 0 {
        j -= 1;
        match &tokens[j] {
            TokenTree::Punct(p) if p.as_char() == '>' && !arrow(j) => depth += 1,
            TokenTree::Punct(p) if p.as_char() == '<' => {
                depth -= 1;
                if depth == 0 {
                    let turbofish = j >= 2
                        && is_punct(tokens.get(j - 1), ':')
                        && is_punct(tokens.get(j - 2), ':');
                    let item = j >= 2
                        && matches!(tokens.get(j - 1), Some(TokenTree::Ident(_)))
                        && (is_ident(tokens.get(j - 2), "fn")
                            || is_ident(tokens.get(j - 2), "struct"));
                    return turbofish || item;
                }
            }
            TokenTree::Punct(p) if p.as_char() == ';' => return false,
            _ => {}
        }
    }
    false
}

/// Whether the `|` at `i` opens a closure's parameters (rather than being
/// a bitwise or logical operator after an expression).
fn opens_closure(tokens: &[TokenTree], i: usize) -> bool {
    match i.checked_sub(1).map(|p| &tokens[p]) {
        None => true,
        // After `?` an expression ended; after a joint `|` this is `||`'s
        // second half.
        Some(TokenTree::Punct(p)) => {
            p.as_char() != '?' && !(p.as_char() == '|' && p.spacing() == Spacing::Joint)
        }
        Some(TokenTree::Ident(ident)) => BEFORE_A_CLOSURE.contains(&ident.to_string().as_str()),
        Some(_) => false,
    }
}

/// A closure starting at the `|` at `i` whose body is `{ expr }`, followed
/// by nothing, `,` or `;`: rewritten as `|…| expr`. Returns where it ends.
fn closure(tokens: &[TokenTree], i: usize) -> Option<(usize, Vec<TokenTree>)> {
    let close = match &tokens[i] {
        TokenTree::Punct(p)
            if p.spacing() == Spacing::Joint && is_punct(tokens.get(i + 1), '|') =>
        {
            i + 1
        }
        _ => (i + 1..tokens.len()).find(|&j| is_punct(tokens.get(j), '|'))?,
    };
    let TokenTree::Group(body) = tokens.get(close + 1)? else {
        return None;
    };
    if body.delimiter() != Delimiter::Brace {
        return None;
    }
    let after = tokens.get(close + 2);
    if !(after.is_none() || is_punct(after, ',') || is_punct(after, ';')) {
        return None;
    }
    let expression = single_expression(body)?;
    let mut out = normalize_list(&tokens[i..=close]);
    out.extend(normalize_list(&expression));
    Some((close + 2, out))
}

/// The content of `{ expr }` when the block holds exactly one expression
/// (no statement, no `;`, no item), else `None`.
fn single_expression(block: &Group) -> Option<Vec<TokenTree>> {
    let parsed: syn::Block = syn::parse2(TokenTree::Group(block.clone()).into()).ok()?;
    match parsed.stmts.as_slice() {
        [syn::Stmt::Expr(_, None)] => Some(block.stream().into_iter().collect()),
        [syn::Stmt::Macro(m)] if m.semi_token.is_none() && m.attrs.is_empty() => {
            Some(block.stream().into_iter().collect())
        }
        // `{ return expr; }` returns what `return expr` does.
        [syn::Stmt::Expr(syn::Expr::Return(_), Some(_))] if FOURTH_DEFINITION.with(Cell::get) => {
            let mut tokens: Vec<TokenTree> = block.stream().into_iter().collect();
            tokens.pop();
            Some(tokens)
        }
        _ => None,
    }
}

/// `match scrutinee { arms }` starting at `i`, with its arms in canonical
/// form. `None` when no brace group after `i` completes a match expression.
fn match_expression(tokens: &[TokenTree], i: usize) -> Option<(usize, Vec<TokenTree>)> {
    for j in i + 1..tokens.len() {
        match &tokens[j] {
            TokenTree::Punct(p) if p.as_char() == ';' => return None,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                let candidate: TokenStream = tokens[i..=j].iter().cloned().collect();
                if let Ok(parsed) = syn::parse2::<syn::ExprMatch>(candidate) {
                    let mut out = vec![tokens[i].clone()];
                    out.extend(normalize_list(&tokens[i + 1..j]));
                    out.push(TokenTree::Group(Group::new(
                        Delimiter::Brace,
                        arms(&parsed.arms).into_iter().collect(),
                    )));
                    return Some((j + 1, out));
                }
            }
            _ => {}
        }
    }
    None
}

fn arms(arms: &[syn::Arm]) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for arm in arms {
        for attr in &arm.attrs {
            out.extend(normalized(attr.to_token_stream()));
        }
        // syn 3 holds an arm's guard in its pattern (`Pat::Guard`); the
        // pattern and the guard are normalised apart, as they always were.
        let (pat, guard) = match &arm.pat {
            syn::Pat::Guard(guarded) => (&*guarded.pat, Some((&guarded.if_token, &guarded.guard))),
            pat => (pat, None),
        };
        let mut pat_tokens: Vec<TokenTree> = pat.to_token_stream().into_iter().collect();
        if matches!(pat, syn::Pat::Or(or) if or.leading_vert.is_some()) {
            pat_tokens.remove(0);
        }
        out.extend(normalize_list(&pat_tokens));
        if let Some((if_token, guard)) = guard {
            out.extend(if_token.to_token_stream());
            out.extend(normalized(guard.to_token_stream()));
        }
        out.extend(arm.fat_arrow_token.to_token_stream());
        let (body, is_block) = arm_body(&arm.body);
        out.extend(normalized(body));
        if !is_block {
            out.push(TokenTree::Punct(Punct::new(',', Spacing::Alone)));
        }
    }
    out
}

/// An arm's body, unwrapped from `{ … }` when that holds one expression;
/// and whether what remains is a block.
fn arm_body(body: &syn::Expr) -> (TokenStream, bool) {
    if let syn::Expr::Block(block) = body {
        if block.attrs.is_empty() && block.label.is_none() {
            match block.block.stmts.as_slice() {
                [syn::Stmt::Expr(inner, None)] => return arm_body(inner),
                [syn::Stmt::Macro(m)] if m.semi_token.is_none() && m.attrs.is_empty() => {
                    return (m.mac.to_token_stream(), false)
                }
                _ => {}
            }
        }
        return (body.to_token_stream(), true);
    }
    (body.to_token_stream(), false)
}

fn normalized(tokens: TokenStream) -> Vec<TokenTree> {
    let list: Vec<TokenTree> = tokens.into_iter().collect();
    normalize_list(&list)
}

/// Whether a statement may start at `i`: at the start of a list, after `;`
/// or after a block.
fn starts_statement(tokens: &[TokenTree], i: usize) -> bool {
    match i.checked_sub(1).map(|p| &tokens[p]) {
        None => true,
        Some(TokenTree::Punct(p)) => p.as_char() == ';',
        Some(TokenTree::Group(g)) => g.delimiter() == Delimiter::Brace,
        Some(_) => false,
    }
}

/// A run of `use` declarations starting at `i`, sorted, each in canonical
/// form. Returns where the run ends.
fn use_run(tokens: &[TokenTree], i: usize) -> Option<(usize, Vec<TokenTree>)> {
    let mut declarations: Vec<(String, Vec<TokenTree>)> = Vec::new();
    let mut at = i;
    while let Some((end, declaration)) = use_declaration(tokens, at) {
        let mut key = String::new();
        v1::write_canonical(declaration.iter().cloned().collect(), &mut key);
        declarations.push((key, declaration));
        at = end;
    }
    if declarations.is_empty() {
        return None;
    }
    declarations.sort_by(|a, b| a.0.cmp(&b.0));
    Some((at, declarations.into_iter().flat_map(|(_, d)| d).collect()))
}

/// `[#[…]]… [pub[(…)]] use tree;` at `i`, with its tree in canonical form.
fn use_declaration(tokens: &[TokenTree], i: usize) -> Option<(usize, Vec<TokenTree>)> {
    let mut at = i;
    while is_punct(tokens.get(at), '#')
        && matches!(tokens.get(at + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket)
    {
        at += 2;
    }
    if is_ident(tokens.get(at), "pub") {
        at += 1;
        if matches!(tokens.get(at), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
        {
            at += 1;
        }
    }
    if !is_ident(tokens.get(at), "use") {
        return None;
    }
    let semi = (at + 1..tokens.len()).find(|&j| is_punct(tokens.get(j), ';'))?;
    // The attributes and the visibility, then `use`.
    let mut out: Vec<TokenTree> = normalize_list(&tokens[i..at]);
    out.push(tokens[at].clone());
    out.extend(use_tree(&tokens[at + 1..semi]));
    out.push(tokens[semi].clone());
    Some((semi + 1, out))
}

/// A use tree with each `{…}` list sorted and a one-item list unbraced.
fn use_tree(tokens: &[TokenTree]) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for token in tokens {
        let TokenTree::Group(group) = token else {
            out.push(token.clone());
            continue;
        };
        if group.delimiter() != Delimiter::Brace {
            out.push(token.clone());
            continue;
        }
        let inner: Vec<TokenTree> = group.stream().into_iter().collect();
        let mut items: Vec<(String, Vec<TokenTree>)> = inner
            .split(|t| is_punct(Some(t), ','))
            .filter(|item| !item.is_empty())
            .map(|item| {
                let item = use_tree(item);
                let mut key = String::new();
                v1::write_canonical(item.iter().cloned().collect(), &mut key);
                (key, item)
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if let [(_, only)] = items.as_slice() {
            // `{self}` imports the module only: its braces stay.
            if !(only.len() == 1 && is_ident(only.first(), "self")) {
                out.extend(only.iter().cloned());
                continue;
            }
        }
        let mut list = Vec::new();
        for (n, (_, item)) in items.into_iter().enumerate() {
            if n > 0 {
                list.push(TokenTree::Punct(Punct::new(',', Spacing::Alone)));
            }
            list.extend(item);
        }
        out.push(TokenTree::Group(Group::new(
            Delimiter::Brace,
            list.into_iter().collect(),
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn canon(src: &str) -> String {
        let tokens = TokenStream::from_str(src).expect("test source parses");
        let mut out = String::new();
        v1::write_canonical(normalize(tokens), &mut out);
        out.replace('\u{1}', " ")
    }

    fn same(a: &str, b: &str) {
        assert_eq!(canon(a), canon(b), "\n{a}\n{b}");
    }

    fn differ(a: &str, b: &str) {
        assert_ne!(canon(a), canon(b), "\n{a}\n{b}");
    }

    #[test]
    fn trailing_commas() {
        same("{ f(a, b,) }", "{ f(a, b) }");
        same("{ f(a,) }", "{ f(a) }");
        same("{ m!(a,) }", "{ m!(a) }");
        same("{ v[0](a,) }", "{ v[0](a) }");
        same("{ f::<u8>(a,) }", "{ f::<u8>(a) }");
        same("{ f::<u8, Vec<u8>,>(a) }", "{ f::<u8, Vec<u8>>(a) }");
        same("{ [1, 2,] }", "{ [1, 2] }");
        same("{ S { a: 1, b: 2, } }", "{ S { a: 1, b: 2 } }");
        same("{ let (a, b,) = t; }", "{ let (a, b) = t; }");
        same("{ (a, b,) }", "{ (a, b) }");
        // A one-element tuple is not a parenthesised expression.
        differ("{ (a,) }", "{ (a) }");
        differ("{ let (a,) = t; }", "{ let (a) = t; }");
        differ("{ Some((a,)) }", "{ Some((a)) }");
        differ("{ x as (u8,) }", "{ x as (u8) }");
        differ("{ fn f() -> (u8,) {} }", "{ fn f() -> (u8) {} }");
        differ("{ a > (b,) }", "{ a > (b) }");
    }

    #[test]
    fn what_rustfmt_adds_to_items_inside_a_body() {
        // A `fn` with generics: its one parameter's trailing comma.
        same(
            "{ fn count<'c>(tx: &'c T,) -> u8 { 0 } }",
            "{ fn count<'c>(tx: &'c T) -> u8 { 0 } }",
        );
        same("{ struct S<T>(T,); }", "{ struct S<T>(T); }");
        // `vec!` in brackets; an empty statement after a `while` or `for`.
        same("{ let v = vec!(1, 2); }", "{ let v = vec![1, 2]; }");
        same("{ let v = vec!{1, 2}; }", "{ let v = vec![1, 2]; }");
        differ("{ let v = m!(1, 2); }", "{ let v = m![1, 2]; }");
        same("{ while a { b() }; c() }", "{ while a { b() } c() }");
        same(
            "{ for x in v { f(x) }; c() }",
            "{ for x in v { f(x) } c() }",
        );
        same(
            "{ 'outer: for x in v { f(x) }; c() }",
            "{ 'outer: for x in v { f(x) } c() }",
        );
        differ(
            "{ let x = loop { break 1 }; }",
            "{ let x = loop { break 1 } }",
        );
        differ("{ loop { break 1 }; }", "{ loop { break 1 } }");
        // A comparison with a one-element tuple is not a parameter list.
        differ("{ a < b && c > (d,) }", "{ a < b && c > (d) }");
        // A `where` clause's trailing comma.
        same(
            "{ fn run<F>(f: F) where F: Fn(u8) -> u8, { f(1) } }",
            "{ fn run<F>(f: F) where F: Fn(u8) -> u8 { f(1) } }",
        );
        differ("{ f(a, { b }) }", "{ f(a { b }) }");
        // `extern` means `extern \"C\"`, and only that ABI.
        same("{ extern fn cb() {} }", "{ extern \"C\" fn cb() {} }");
        differ("{ extern \"system\" fn cb() {} }", "{ extern fn cb() {} }");
        // A `use` with attributes is sorted with the others.
        same(
            "{ #[allow(unused_imports)] use std::fmt::Write; use std::collections::BTreeMap; f() }",
            "{ use std::collections::BTreeMap; #[allow(unused_imports)] use std::fmt::Write; f() }",
        );
        differ(
            "{ #[allow(unused_imports)] use std::fmt::Write; f() }",
            "{ use std::fmt::Write; f() }",
        );
    }

    #[test]
    fn match_arms() {
        same(
            "{ match x { A => { f(a, b) } B => g(), } }",
            "{ match x { A => f(a, b), B => g() } }",
        );
        same(
            "{ match x { | A | B => 1, } }",
            "{ match x { A | B => 1 } }",
        );
        same(
            "{ match x { A => { println!(\"a\") } } }",
            "{ match x { A => println!(\"a\"), } }",
        );
        same(
            "{ match x { A => { f(); g() }, B => {} } }",
            "{ match x { A => { f(); g() } B => {} } }",
        );
        // The canonical form of an already formatted match is its tokens.
        assert_eq!(
            canon("{ match n { 0 => a, _ => { f(); b } } }"),
            "{match n {0 = > a , _ = > {f (); b }}}"
        );
        differ(
            "{ match x { A => f(), B => g() } }",
            "{ match x { B => g(), A => f() } }",
        );
        differ("{ match x { A => { f(); } } }", "{ match x { A => f(), } }");
        same(
            "{ match x { A if y.iter().any(|v| { v > 1 }) => 1, _ => 2 } }",
            "{ match x { A if y.iter().any(|v| v > 1) => 1, _ => 2, } }",
        );
        // A nested match in a body is canonical too.
        same(
            "{ match x { A => match y { B => { 1 } }, } }",
            "{ match x { A => match y { B => 1, } } }",
        );
        // A block as scrutinee.
        same(
            "{ match { x } { A => { 1 } } }",
            "{ match { x } { A => 1 } }",
        );
    }

    #[test]
    fn closures() {
        same("{ v.map(|x| { x + 1 }) }", "{ v.map(|x| x + 1) }");
        same(
            "{ let f = move |x| { g(x) }; }",
            "{ let f = move |x| g(x); }",
        );
        same("{ f(|| { 1 }, 2) }", "{ f(|| 1, 2) }");
        same(
            "{ q(|row| { Ok((row.get(0)?, row.get(1)?,)) }) }",
            "{ q(|row| Ok((row.get(0)?, row.get(1)?))) }",
        );
        // Statements, a return type, or an operator after the block: kept.
        differ("{ v.map(|x| { x; }) }", "{ v.map(|x| x) }");
        differ("{ v.map(|x| -> u8 { x }) }", "{ v.map(|x| -> u8 x) }");
        differ("{ f(|x| { a + b } * 2) }", "{ f(|x| a + b * 2) }");
        // `a | { b }` is an operator, not a closure.
        assert_eq!(canon("{ a | { b } }"), "{a | {b }}");
    }

    #[test]
    fn parentheses_statements_and_jumps() {
        same("{ let v = ((a + b)); }", "{ let v = (a + b); }");
        differ("{ f((a, b)) }", "{ f(a, b) }");
        same("{ foo();; let x = 1;; }", "{ foo(); let x = 1; }");
        same(
            "{ if a { return Err(e) } Ok(()) }",
            "{ if a { return Err(e); } Ok(()) }",
        );
        same("{ loop { break } }", "{ loop { break; } }");
        same("{ 'a: loop { break 'a } }", "{ 'a: loop { break 'a; } }");
        same(
            "{ for x in y { if x { continue } f() } }",
            "{ for x in y { if x { continue; } f() } }",
        );
        differ("{ f(); g() }", "{ g(); f() }");
        differ("{ x }", "{ x; }");
    }

    #[test]
    fn use_declarations() {
        same(
            "{ use zeta::{b}; use alpha::{self, c, b::{e, d,},}; use std::io::{Write as _, Read}; f() }",
            "{ use alpha::{self, b::{d, e}, c}; use std::io::{Read, Write as _}; use zeta::b; f() }",
        );
        differ("{ use a::{self}; }", "{ use a::self; }");
        differ("{ use a::b; }", "{ use a::c; }");
    }
}
