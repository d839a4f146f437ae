//! `docs/org.edgeid.Auth1.xml` (the interface file the .deb installs to
//! /usr/share/dbus-1/interfaces/) against what the running daemon says
//! about itself: `org.freedesktop.DBus.Introspectable.Introspect` on
//! `/org/edgeid/Auth1` over a private dbus-daemon. Both are parsed and the
//! `org.edgeid.Auth1` interface compared structurally: every method with
//! its arguments (name, type, direction), signal, property (type, access)
//! and annotation. Comments and layout of the file are free.

mod support;

use std::collections::BTreeMap;

use support::{Daemon, DbusDaemon, Device, repo, tools};

const INTERFACE: &str = "org.edgeid.Auth1";

/// An XML element: name, attributes, children (text is not kept).
#[derive(Debug)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or_default()
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses the XML subset of D-Bus introspection data: elements with
/// quoted attributes, self-closing tags, comments, a DOCTYPE and an XML
/// declaration. Returns the root element.
fn parse(xml: &str) -> Element {
    let mut stack: Vec<Element> = vec![Element {
        name: String::new(),
        attrs: BTreeMap::new(),
        children: Vec::new(),
    }];
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").expect("unterminated comment");
            rest = &after[end + 3..];
            continue;
        }
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let done = stack.pop().expect("element");
            assert_eq!(done.name, name.trim(), "mismatched closing tag");
            stack.last_mut().expect("parent").children.push(done);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs_text) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        let mut attrs = BTreeMap::new();
        loop {
            attrs_text = attrs_text.trim_start();
            let Some((key, value)) = attrs_text.split_once('=') else {
                break;
            };
            let value = value.trim_start();
            let quote = value.chars().next().expect("attribute value");
            let close = value[1..].find(quote).expect("closing quote") + 1;
            attrs.insert(key.trim().to_owned(), unescape(&value[1..close]));
            attrs_text = &value[close + 1..];
        }
        let element = Element {
            name: name.to_owned(),
            attrs,
            children: Vec::new(),
        };
        if self_closing {
            stack.last_mut().expect("parent").children.push(element);
        } else {
            stack.push(element);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut document = stack.pop().expect("document");
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().expect("root")
}

/// What an interface promises, in a form that compares structurally.
#[derive(Debug, PartialEq, Eq)]
struct Contract {
    /// method → [(arg name, type, direction)]
    methods: BTreeMap<String, Vec<(String, String, String)>>,
    /// signal → [(arg name, type)]
    signals: BTreeMap<String, Vec<(String, String)>>,
    /// property → (type, access)
    properties: BTreeMap<String, (String, String)>,
    /// "member/annotation" → value, for the interface and its members
    annotations: BTreeMap<String, String>,
}

fn contract(root: &Element, origin: &str) -> Contract {
    let iface = root
        .all("interface")
        .find(|i| i.attr("name") == INTERFACE)
        .unwrap_or_else(|| panic!("{origin}: no interface {INTERFACE}"));
    let mut c = Contract {
        methods: BTreeMap::new(),
        signals: BTreeMap::new(),
        properties: BTreeMap::new(),
        annotations: BTreeMap::new(),
    };
    let mut annotations = BTreeMap::new();
    let mut annotate = |owner: &str, e: &Element| {
        for a in e.all("annotation") {
            annotations.insert(
                format!("{owner}/{}", a.attr("name")),
                a.attr("value").to_owned(),
            );
        }
    };
    annotate("", iface);
    for m in iface.all("method") {
        let args = m
            .all("arg")
            .map(|a| {
                let dir = match a.attr("direction") {
                    "" => "in",
                    d => d,
                };
                (
                    a.attr("name").to_owned(),
                    a.attr("type").to_owned(),
                    dir.to_owned(),
                )
            })
            .collect();
        annotate(m.attr("name"), m);
        assert!(
            c.methods.insert(m.attr("name").to_owned(), args).is_none(),
            "{origin}: method {} twice",
            m.attr("name")
        );
    }
    for s in iface.all("signal") {
        let args = s
            .all("arg")
            .map(|a| (a.attr("name").to_owned(), a.attr("type").to_owned()))
            .collect();
        annotate(s.attr("name"), s);
        c.signals.insert(s.attr("name").to_owned(), args);
    }
    for p in iface.all("property") {
        annotate(p.attr("name"), p);
        c.properties.insert(
            p.attr("name").to_owned(),
            (p.attr("type").to_owned(), p.attr("access").to_owned()),
        );
    }
    c.annotations = annotations;
    c
}

#[test]
fn the_interface_file_is_what_the_daemon_serves() {
    require!(tools(&["dbus-daemon"]));
    let documented = std::fs::read_to_string(repo().join("docs/org.edgeid.Auth1.xml"))
        .expect("docs/org.edgeid.Auth1.xml");
    let documented = contract(&parse(&documented), "docs/org.edgeid.Auth1.xml");

    // A daemon on a private bus; its camera plays one grey picture.
    let device = Device::new("device_id = \"door-introspect\"\n");
    device.init();
    image::RgbImage::from_pixel(64, 48, image::Rgb([128, 128, 128]))
        .save(device.camera.join("grey.png"))
        .expect("camera picture");
    let bus = DbusDaemon::start(&device.dir);
    let config = device.write_config(
        "dbus",
        &format!(
            "device_id = \"door-introspect\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\n\
             fps = 5.0\n[dbus]\nenabled = true\nbus = \"{}\"\n",
            device.camera.display(),
            bus.address
        ),
    );
    let daemon = Daemon::start(&device, &config, &[]);

    let live = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let conn = zbus::connection::Builder::address(bus.address.as_str())
                .expect("address")
                .build()
                .await
                .expect("connect to the private bus");
            zbus::fdo::IntrospectableProxy::builder(&conn)
                .destination("org.edgeid.Auth1")
                .expect("destination")
                .path("/org/edgeid/Auth1")
                .expect("path")
                .build()
                .await
                .expect("proxy")
                .introspect()
                .await
                .expect("Introspect")
        });
    let live = contract(&parse(&live), "the daemon's introspection");
    assert_eq!(
        documented, live,
        "docs/org.edgeid.Auth1.xml (left) differs from what the daemon serves (right): \
         update the file and docs/dbus.md"
    );
    daemon.stop();
}

#[test]
fn the_parser_reads_introspection_xml() {
    let xml = r#"<!DOCTYPE node PUBLIC "x" "y">
<node>
  <!-- a comment with <tags> -->
  <interface name="org.edgeid.Auth1">
    <method name="Verify">
      <arg name="subject" type="s" direction="in"/>
      <arg type="s" direction="out"/>
    </method>
    <signal name="Hint"><arg name="nonce" type="s"/></signal>
    <property name="Models" type="as" access="read">
      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
    </property>
  </interface>
</node>"#;
    let c = contract(&parse(xml), "sample");
    assert_eq!(
        c.methods["Verify"],
        vec![
            ("subject".into(), "s".into(), "in".into()),
            (String::new(), "s".into(), "out".into())
        ]
    );
    assert_eq!(c.signals["Hint"], vec![("nonce".into(), "s".into())]);
    assert_eq!(c.properties["Models"], ("as".into(), "read".into()));
    assert_eq!(
        c.annotations["Models/org.freedesktop.DBus.Property.EmitsChangedSignal"],
        "const"
    );
}
