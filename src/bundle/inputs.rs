//! The inputs of the bundle's derivations, by role.
//!
//! The build graph keys a node's inputs by label, and the labels are part of the derived
//! entry's fingerprint (`build::Graph::derive` hashes them with the inputs' ids), so each
//! label's spelling is frozen: [`InputRole::label`] is the only place that writes one, and
//! builders find their inputs by role instead of matching strings.

use std::collections::BTreeMap;

use crate::build::{BuildContext, BuildError, NodeIndex};
use crate::store::EntryInfo;

/// What an input is to the derivation that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputRole<'a> {
    /// The interpreter's archive (`archive`), unpacked by the interpreter builder.
    Archive,
    /// The wheel file to install (`wheel`).
    Wheel,
    /// The tree to byte-compile (`installed`).
    Installed,
    /// The interpreter that byte-compiles (`python`).
    Python,
    /// The bundle's interpreter (`interpreter`).
    Interpreter,
    /// The pycs of the interpreter's standard library (`interpreter-pyc`).
    InterpreterPyc,
    /// The installed package of this name (`pkg:NAME`).
    Package(&'a str),
    /// The pycs of the package of this name (`pyc:NAME`).
    PackagePyc(&'a str),
    /// A wheel whose deflated members the ZIP may copy, by its entry name (`wheel:NAME`).
    ReusableWheel(&'a str),
    /// The assembled bundle (`bundle`).
    Bundle,
    /// The bundle's ZIP (`zip`).
    Zip,
    /// The bundle's validation report (`validation`).
    Validation,
}

impl<'a> InputRole<'a> {
    /// The label the input has in the graph: part of the derived entry's id, so these
    /// spellings never change.
    pub(crate) fn label(&self) -> String {
        match self {
            InputRole::Archive => "archive".to_owned(),
            InputRole::Wheel => "wheel".to_owned(),
            InputRole::Installed => "installed".to_owned(),
            InputRole::Python => "python".to_owned(),
            InputRole::Interpreter => "interpreter".to_owned(),
            InputRole::InterpreterPyc => "interpreter-pyc".to_owned(),
            InputRole::Package(name) => format!("pkg:{name}"),
            InputRole::PackagePyc(name) => format!("pyc:{name}"),
            InputRole::ReusableWheel(name) => format!("wheel:{name}"),
            InputRole::Bundle => "bundle".to_owned(),
            InputRole::Zip => "zip".to_owned(),
            InputRole::Validation => "validation".to_owned(),
        }
    }

    /// The role a label stands for; `None` for a label no bundle derivation writes.
    pub(crate) fn parse(label: &'a str) -> Option<InputRole<'a>> {
        let role = match label {
            "archive" => InputRole::Archive,
            "wheel" => InputRole::Wheel,
            "installed" => InputRole::Installed,
            "python" => InputRole::Python,
            "interpreter" => InputRole::Interpreter,
            "interpreter-pyc" => InputRole::InterpreterPyc,
            "bundle" => InputRole::Bundle,
            "zip" => InputRole::Zip,
            "validation" => InputRole::Validation,
            _ => {
                let (kind, name) = label.split_once(':')?;
                match kind {
                    "pkg" => InputRole::Package(name),
                    "pyc" => InputRole::PackagePyc(name),
                    "wheel" => InputRole::ReusableWheel(name),
                    _ => return None,
                }
            }
        };
        Some(role)
    }
}

/// A derivation's inputs, labelled by role, as [`crate::build::Graph::derive`] takes them.
pub(crate) fn labelled<'a>(
    inputs: impl IntoIterator<Item = (InputRole<'a>, NodeIndex)>,
) -> BTreeMap<String, NodeIndex> {
    inputs
        .into_iter()
        .map(|(role, node)| (role.label(), node))
        .collect()
}

/// The input of `role`; an error when the derivation was not given one.
pub(crate) fn input<'c>(
    ctx: &'c BuildContext<'_>,
    role: InputRole<'_>,
) -> Result<&'c EntryInfo, BuildError> {
    ctx.input(&role.label())
}

/// The input of `role`, when the derivation was given one (optional inputs).
pub(crate) fn optional<'c>(
    ctx: &'c BuildContext<'_>,
    role: InputRole<'_>,
) -> Option<&'c EntryInfo> {
    ctx.inputs.get(&role.label())
}

/// Every input whose role `keep` accepts, in label order.
pub(crate) fn inputs_where<'c>(
    ctx: &'c BuildContext<'_>,
    keep: impl Fn(InputRole<'_>) -> bool,
) -> impl Iterator<Item = &'c EntryInfo> {
    ctx.inputs
        .iter()
        .filter(move |(label, _)| InputRole::parse(label).is_some_and(&keep))
        .map(|(_, entry)| entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels are hashed into the ids of bundles, ZIPs and everything derived from them:
    /// their exact bytes are held here.
    #[test]
    fn labels_keep_their_spelling_and_read_back() {
        let held = [
            (InputRole::Archive, "archive"),
            (InputRole::Wheel, "wheel"),
            (InputRole::Installed, "installed"),
            (InputRole::Python, "python"),
            (InputRole::Interpreter, "interpreter"),
            (InputRole::InterpreterPyc, "interpreter-pyc"),
            (InputRole::Package("lxml"), "pkg:lxml"),
            (InputRole::PackagePyc("lxml"), "pyc:lxml"),
            (
                InputRole::ReusableWheel("lxml-6.1.3-cp312-cp312-win_amd64.whl"),
                "wheel:lxml-6.1.3-cp312-cp312-win_amd64.whl",
            ),
            (InputRole::Bundle, "bundle"),
            (InputRole::Zip, "zip"),
            (InputRole::Validation, "validation"),
        ];
        for (role, label) in held {
            assert_eq!(role.label(), label);
            assert_eq!(InputRole::parse(label), Some(role), "{label}");
        }
        assert_eq!(InputRole::parse("other"), None);
        assert_eq!(InputRole::parse("src:x"), None);
    }
}
