//! Loading and attaching a steering program of the XDP object (`ebpf/xdp`), and reading its
//! counters.
//!
//! [`Steering`] owns the loaded object: one named program ([`PROGRAM`] for servers,
//! [`CLIENT_PROGRAM`] for clients and relays), the maps and the aya-log reader. Dropping it
//! detaches the program from the interface and unloads it.
//!
//! The object file is found by [`EbpfObject::locate`]: an explicit path, else
//! `XDHCP6_EBPF_OBJECT` at run time, else a copy the binary embedded at build time when
//! `XDHCP6_EBPF_OBJECT` was set for `cargo build` (each binary crate's `build.rs`, passed in
//! with [`EbpfObject::embedded`]). Plain stable builds embed nothing and so never need the BPF
//! toolchain.

use std::{
    borrow::Cow,
    fmt, io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{MapData, MapError, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp, XdpMode, xdp::XdpLinkId},
};
use aya_log::EbpfLogger;
use tracing::{debug, info, warn};
use xdhcp6_common::{CLIENT_PROGRAM, COUNTERS_INDEX, COUNTERS_MAP, Counters, PROGRAM, XSK_MAP};

use crate::os::error_chain;

/// Environment variable naming the eBPF object, at run time (and at build time, to embed it).
pub const OBJECT_ENV: &str = "XDHCP6_EBPF_OBJECT";

/// The compiled XDP program, as bytes ready for [`Steering::load`].
pub struct EbpfObject {
    bytes: Cow<'static, [u8]>,
    origin: ObjectOrigin,
}

/// Where an [`EbpfObject`] came from, for logs and errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectOrigin {
    /// A file, named on the command line or by `XDHCP6_EBPF_OBJECT` at run time.
    File(PathBuf),
    /// The copy embedded at build time.
    Embedded,
}

impl fmt::Display for ObjectOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectOrigin::File(path) => write!(f, "{}", path.display()),
            ObjectOrigin::Embedded => write!(f, "embedded object"),
        }
    }
}

impl EbpfObject {
    /// Finds the object: `explicit`, else `XDHCP6_EBPF_OBJECT` now, else `embedded` (the
    /// calling binary's build-time copy, see [`Self::embedded`]).
    pub fn locate(
        explicit: Option<&Path>,
        embedded: Option<EbpfObject>,
    ) -> Result<Self, SteeringError> {
        if let Some(path) = explicit {
            return Self::read(path);
        }
        if let Some(path) = std::env::var_os(OBJECT_ENV).filter(|path| !path.is_empty()) {
            return Self::read(Path::new(&path));
        }
        embedded.ok_or(SteeringError::NoObject)
    }

    /// Reads the object from `path`.
    pub fn read(path: &Path) -> Result<Self, SteeringError> {
        // A `Vec<u8>` comes from the global allocator, aligned for the ELF headers aya parses
        // (this is what `Ebpf::load_file` does too).
        let bytes = std::fs::read(path).map_err(|source| SteeringError::ReadObject {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(EbpfObject {
            bytes: Cow::Owned(bytes),
            origin: ObjectOrigin::File(path.to_path_buf()),
        })
    }

    /// An object a binary embedded at build time, e.g. with
    /// `aya::include_bytes_aligned!(env!("XDHCP6_EMBEDDED_EBPF_OBJECT"))` (aligned for the ELF
    /// headers aya parses).
    pub fn embedded(bytes: &'static [u8]) -> Self {
        EbpfObject {
            bytes: Cow::Borrowed(bytes),
            origin: ObjectOrigin::Embedded,
        }
    }

    /// Where the object came from.
    pub fn origin(&self) -> &ObjectOrigin {
        &self.origin
    }

    /// The ELF bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// How to attach the program to an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (XDP_FLAGS_DRV_MODE); fails where the driver has no XDP support.
    Native,
    /// Generic XDP in the kernel's receive path (XDP_FLAGS_SKB_MODE); works everywhere, slower.
    Skb,
    /// Native, falling back to generic when the driver refuses.
    #[default]
    Auto,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
            AttachMode::Auto => "auto",
        })
    }
}

impl std::str::FromStr for AttachMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "native" => Ok(AttachMode::Native),
            "skb" => Ok(AttachMode::Skb),
            "auto" => Ok(AttachMode::Auto),
            _ => Err(format!(
                "unknown XDP mode `{text}` (expected native, skb or auto)"
            )),
        }
    }
}

/// Errors from loading, attaching or reading the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum SteeringError {
    /// No object was named and none was embedded.
    #[error(
        "no eBPF object: pass --ebpf-object PATH, or set {OBJECT_ENV} to the built xdhcp6-ebpf \
         object (at run time, or at build time to embed it); `cargo xtask build` builds it"
    )]
    NoObject,
    /// The object file could not be read.
    #[error("cannot read eBPF object {}", path.display())]
    ReadObject {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// aya rejected the object, or creating its maps failed.
    #[error("cannot load eBPF object {origin}")]
    Load {
        /// Which object.
        origin: ObjectOrigin,
        /// Why.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// The object has no XDP program of the expected name.
    #[error("eBPF object has no XDP program `{0}`")]
    MissingProgram(&'static str),
    /// The object lacks one of the program's maps.
    #[error("eBPF object has no map `{0}`")]
    MissingMap(&'static str),
    /// The kernel refused the program (the verifier log is in the source).
    #[error("the kernel refused XDP program `{program}`")]
    Verify {
        /// The program.
        program: &'static str,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// Attaching to the interface failed.
    #[error("cannot attach XDP program to {interface} in {mode} mode")]
    Attach {
        /// The interface.
        interface: String,
        /// The mode asked for.
        mode: AttachMode,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// The program is already attached; detach it first.
    #[error("XDP program already attached to {0}")]
    AlreadyAttached(String),
    /// Detaching failed.
    #[error("cannot detach XDP program from {interface}")]
    Detach {
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// A map operation failed.
    #[error("map `{map}`")]
    Map {
        /// Which map.
        map: &'static str,
        /// Why.
        #[source]
        source: MapError,
    },
}

/// Where the program is attached.
#[derive(Debug)]
struct Attachment {
    interface: String,
    mode: AttachMode,
    link: XdpLinkId,
}

/// The loaded XDP steering program, its maps and its log reader.
pub struct Steering {
    ebpf: Ebpf,
    program: &'static str,
    // The logger owns the AYA_LOGS ring buffer taken out of `ebpf`: dropping it before the
    // program is loaded closes the map fd and the load fails, so it lives as long as we do.
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    attachment: Option<Attachment>,
}

impl fmt::Debug for Steering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Steering")
            .field("program", &self.program)
            .field("attachment", &self.attachment)
            .field("logger", &self.logger.is_some())
            .finish_non_exhaustive()
    }
}

impl Steering {
    /// Loads the object's maps and the server program ([`PROGRAM`]) into the kernel (the
    /// verifier runs here), unattached.
    pub fn load(object: &EbpfObject) -> Result<Self, SteeringError> {
        Self::load_program(object, PROGRAM)
    }

    /// Loads the object's maps and the client program ([`CLIENT_PROGRAM`]), unattached.
    pub fn load_client(object: &EbpfObject) -> Result<Self, SteeringError> {
        Self::load_program(object, CLIENT_PROGRAM)
    }

    /// Loads the object's maps and the XDP program `program`, unattached.
    pub fn load_program(object: &EbpfObject, program: &'static str) -> Result<Self, SteeringError> {
        let mut ebpf = Ebpf::load(object.bytes()).map_err(|source| SteeringError::Load {
            origin: object.origin.clone(),
            source: Box::new(source),
        })?;
        let logger = match EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(error) => {
                // Only the program's error paths log, so running without the reader is fine.
                warn!(%error, "eBPF log reader unavailable; XDP program errors will not be shown");
                None
            }
        };
        xdp_program_mut(&mut ebpf, program)?
            .load()
            .map_err(|source| SteeringError::Verify { program, source })?;
        for map in [XSK_MAP, COUNTERS_MAP] {
            if ebpf.map(map).is_none() {
                return Err(SteeringError::MissingMap(map));
            }
        }
        info!(object = %object.origin, program, "XDP program loaded");
        Ok(Steering {
            ebpf,
            program,
            logger,
            attachment: None,
        })
    }

    /// Attaches the program to `interface`; returns the mode in use (never `Auto`).
    pub fn attach(
        &mut self,
        interface: &str,
        mode: AttachMode,
    ) -> Result<AttachMode, SteeringError> {
        if let Some(attachment) = &self.attachment {
            return Err(SteeringError::AlreadyAttached(attachment.interface.clone()));
        }
        let program = xdp_program_mut(&mut self.ebpf, self.program)?;
        let attach = |program: &mut Xdp, mode: AttachMode| {
            let flags = match mode {
                AttachMode::Native | AttachMode::Auto => XdpMode::Driver,
                AttachMode::Skb => XdpMode::Skb,
            };
            program
                .attach(interface, flags)
                .map_err(|source| SteeringError::Attach {
                    interface: interface.to_owned(),
                    mode,
                    source,
                })
        };
        let (link, used) = match mode {
            AttachMode::Native | AttachMode::Skb => (attach(program, mode)?, mode),
            AttachMode::Auto => match attach(program, AttachMode::Native) {
                Ok(link) => (link, AttachMode::Native),
                // A missing interface is missing in every mode.
                Err(
                    error @ SteeringError::Attach {
                        source: ProgramError::UnknownInterface { .. },
                        ..
                    },
                ) => return Err(error),
                Err(error) => {
                    warn!(
                        interface,
                        error = %error_chain(&error),
                        "native XDP refused, using generic (skb) mode"
                    );
                    (attach(program, AttachMode::Skb)?, AttachMode::Skb)
                }
            },
        };
        info!(interface, mode = %used, "XDP program attached");
        self.attachment = Some(Attachment {
            interface: interface.to_owned(),
            mode: used,
            link,
        });
        Ok(used)
    }

    /// Detaches the program from its interface, if attached.
    pub fn detach(&mut self) -> Result<(), SteeringError> {
        let Some(attachment) = self.attachment.take() else {
            return Ok(());
        };
        let program = xdp_program_mut(&mut self.ebpf, self.program)?;
        program
            .detach(attachment.link)
            .map_err(|source| SteeringError::Detach {
                interface: attachment.interface.clone(),
                source,
            })?;
        info!(interface = attachment.interface, "XDP program detached");
        Ok(())
    }

    /// The interface and mode the program is attached with.
    pub fn attached(&self) -> Option<(&str, AttachMode)> {
        self.attachment
            .as_ref()
            .map(|attachment| (attachment.interface.as_str(), attachment.mode))
    }

    /// The program's counters, summed over all CPUs.
    pub fn counters(&self) -> Result<Counters, SteeringError> {
        let map_error = |source| SteeringError::Map {
            map: COUNTERS_MAP,
            source,
        };
        let map = self
            .ebpf
            .map(COUNTERS_MAP)
            .ok_or(SteeringError::MissingMap(COUNTERS_MAP))?;
        let array = PerCpuArray::<_, PodCounters>::try_from(map).map_err(map_error)?;
        let per_cpu = array.get(&COUNTERS_INDEX, 0).map_err(map_error)?;
        let mut total = Counters::default();
        for counters in per_cpu.iter() {
            total.accumulate(&counters.0);
        }
        Ok(total)
    }

    /// The AF_XDP socket map: `set(queue, socket_fd, 0)` steers that receive queue's DHCPv6.
    pub fn xsk_map(&mut self) -> Result<XskMap<&mut MapData>, SteeringError> {
        let map = self
            .ebpf
            .map_mut(XSK_MAP)
            .ok_or(SteeringError::MissingMap(XSK_MAP))?;
        XskMap::try_from(map).map_err(|source| SteeringError::Map {
            map: XSK_MAP,
            source,
        })
    }

    /// The loaded program, e.g. for `aya::programs::TestRun`.
    pub fn program(&self) -> Result<&Xdp, SteeringError> {
        self.ebpf
            .program(self.program)
            .ok_or(SteeringError::MissingProgram(self.program))?
            .try_into()
            .map_err(|_| SteeringError::MissingProgram(self.program))
    }

    /// Forwards what the program logged (error paths only) to the `log`/`tracing` logger.
    pub fn flush_log(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        self.flush_log();
        if let Err(error) = self.detach() {
            // aya also drops the link with the program, which detaches it; this is a last word.
            warn!(error = %error_chain(&error), "detaching XDP program on drop");
        } else {
            debug!("XDP steering dropped");
        }
    }
}

fn xdp_program_mut<'a>(
    ebpf: &'a mut Ebpf,
    program: &'static str,
) -> Result<&'a mut Xdp, SteeringError> {
    ebpf.program_mut(program)
        .ok_or(SteeringError::MissingProgram(program))?
        .try_into()
        .map_err(|_| SteeringError::MissingProgram(program))
}

/// [`Counters`] as aya reads it from the per-CPU map.
///
/// aya copies map values as plain bytes and asks for its `Pod` marker, which only the crate that
/// defines a type may implement for it; this wrapper carries it here, next to the map access,
/// so that the `no_std` crate of the map types needs neither aya nor `unsafe`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(transparent)]
struct PodCounters(Counters);

// Safety: `PodCounters` is `repr(transparent)` over `Counters`, which is `repr(C)` and made only
// of `u64`s: no padding, and every bit pattern is a valid value.
unsafe impl aya::Pod for PodCounters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins_and_missing_file_names_it() {
        let missing = Path::new("/nonexistent/xdhcp6-ebpf.o");
        let Err(error) = EbpfObject::locate(Some(missing), None) else {
            panic!("a missing file loaded");
        };
        assert!(matches!(error, SteeringError::ReadObject { .. }));
        assert!(error.to_string().contains("/nonexistent/xdhcp6-ebpf.o"));
    }

    #[test]
    fn explicit_path_reads_the_file() {
        let path = std::env::temp_dir().join(format!("xdhcp6-object-{}", std::process::id()));
        std::fs::write(&path, b"\x7fELF").unwrap();
        let object = EbpfObject::locate(Some(&path), None).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(object.bytes(), b"\x7fELF");
        assert_eq!(object.origin(), &ObjectOrigin::File(path));
    }

    #[test]
    fn no_object_error_says_what_to_set() {
        let message = SteeringError::NoObject.to_string();
        assert!(message.contains("--ebpf-object"), "{message}");
        assert!(message.contains(OBJECT_ENV), "{message}");
    }

    #[test]
    fn garbage_object_is_a_load_error() {
        let object = EbpfObject {
            bytes: Cow::Borrowed(b"not an ELF file"),
            origin: ObjectOrigin::File("garbage.o".into()),
        };
        let error = Steering::load(&object).unwrap_err();
        assert!(matches!(error, SteeringError::Load { .. }), "{error:?}");
        assert!(error.to_string().contains("garbage.o"));
    }

    #[test]
    fn counters_wrapper_keeps_the_layout() {
        assert_eq!(size_of::<PodCounters>(), size_of::<Counters>());
        assert_eq!(align_of::<PodCounters>(), align_of::<Counters>());
    }

    #[test]
    fn attach_mode_parses_its_names() {
        for mode in [AttachMode::Native, AttachMode::Skb, AttachMode::Auto] {
            assert_eq!(mode.to_string().parse::<AttachMode>(), Ok(mode));
        }
        assert!("hw".parse::<AttachMode>().is_err());
    }

    #[test]
    fn error_chain_names_the_file() {
        let error = SteeringError::ReadObject {
            path: "x.o".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error_chain(&error), "cannot read eBPF object x.o: gone");
    }
}
