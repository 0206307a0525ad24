//! The exec trampoline: a tiny static program, held in a sealed memfd, that a
//! container's first process is exec'd through on its way to the user's
//! program.
//!
//! Why: CVE-2019-5736. While the runtime prepares a container, the process is
//! the runtime's own binary, and `/proc/self/exe` points at that file on the
//! host. If the container's program is a script whose interpreter is
//! `#!/proc/self/exe`, the kernel resolves that link in the exec'ing process and
//! loads the host's runtime binary inside the container, where a hostile
//! process can open it and later write to it. runc defended by copying its
//! whole binary into a memfd on every start (about 9 ms per start, runc PRs
//! 4432 and 4448). Berth copies a 200-byte program instead: the runtime execs
//! the trampoline from a sealed memfd, so `/proc/self/exe` becomes a sealed,
//! read-only, anonymous file, and the trampoline then execs the real program.
//! The cost is one exec of a 200-byte static ELF.
//!
//! The trampoline's contract: it is run as `argv = [MARKER, path, argv0,
//! args…]` and does `execve(path, [argv0, args…], envp)`; run with any other
//! `argv[0]` it exits 126 at once (see [`MARKER`]). If that fails it exits with
//! 127 when the file does not exist and 126 otherwise, the shell's (and
//! docker's) codes. It is hand-assembled because no compiler output is this
//! small or this easy to audit; the bytes are explained line by line below.

use std::ffi::CStr;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

/// The trampoline's machine code for x86_64, with the instruction each line
/// encodes. On entry the kernel has put `argc` at `[rsp]`, then `argv[]`, a
/// NULL, then `envp[]`.
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0x48, 0x8b, 0x44, 0x24, 0x08, //       mov rax, [rsp+8]         ; argv[0]
    0x48, 0xb9, b'b', b'e', b'r', b't', // movabs rcx, MARKER      ; the 8 bytes
    b'h', b' ', b'1', 0x00, //              ...                      ; "berth 1\0"
    0x48, 0x39, 0x08, //                   cmp [rax], rcx
    0x75, 0x31, //                         jne refuse (+49)         ; not run by berth
    0x48, 0x8b, 0x7c, 0x24, 0x10, //       mov rdi, [rsp+16]        ; path = argv[1]
    0x48, 0x8d, 0x74, 0x24, 0x18, //       lea rsi, [rsp+24]        ; &argv[2]
    0x48, 0x8b, 0x04, 0x24, //             mov rax, [rsp]           ; argc
    0x48, 0x8d, 0x54, 0xc4, 0x10, //       lea rdx, [rsp+rax*8+16]  ; envp
    0xb8, 0x3b, 0x00, 0x00, 0x00, //       mov eax, 59              ; execve
    0x0f, 0x05, //                         syscall
    0xbf, 0x7e, 0x00, 0x00, 0x00, //       mov edi, 126             ; failed: 126 ...
    0x48, 0x83, 0xf8, 0xfe, //             cmp rax, -2              ; ... unless ENOENT
    0x75, 0x05, //                         jne +5
    0xbf, 0x7f, 0x00, 0x00, 0x00, //       mov edi, 127             ; ENOENT: 127
    0xb8, 0xe7, 0x00, 0x00, 0x00, //       mov eax, 231             ; exit_group
    0x0f, 0x05, //                         syscall
    0xbf, 0x7e, 0x00, 0x00, 0x00, // refuse: mov edi, 126
    0xb8, 0xe7, 0x00, 0x00, 0x00, //       mov eax, 231             ; exit_group
    0x0f, 0x05, //                         syscall
];

/// The `argv[0]` berth gives the trampoline. It holds a space, which an
/// interpreter named on a `#!` line never can (the name ends at the first
/// blank): so when a program's `#!/proc/self/exe` makes the kernel run the
/// trampoline again as an interpreter, it sees another `argv[0]` and exits 126
/// instead of exec'ing the script again, forever.
pub const MARKER: &std::ffi::CStr = c"berth 1";

#[cfg(target_arch = "x86_64")]
const MACHINE: u16 = 0x3e; // EM_X86_64

const LOAD_ADDR: u64 = 0x40_0000;
const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;
const PHDR_COUNT: u16 = 2;

/// The whole ELF file: header, a PT_LOAD segment mapping the file read+exec,
/// a PT_GNU_STACK saying the stack is not executable (without it the kernel
/// could set READ_IMPLIES_EXEC, which would be inherited by the container's
/// program), then the code.
#[cfg(target_arch = "x86_64")]
pub fn elf_image() -> Vec<u8> {
    let code_off = u64::from(EHDR_SIZE) + u64::from(PHDR_SIZE) * u64::from(PHDR_COUNT);
    let file_size = code_off + CODE.len() as u64;
    let mut elf = Vec::with_capacity(file_size as usize);
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&MACHINE.to_le_bytes()); // e_machine
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(LOAD_ADDR + code_off).to_le_bytes()); // e_entry
    elf.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&PHDR_SIZE.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&PHDR_COUNT.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                                // PT_LOAD, PF_R | PF_X, the whole file at LOAD_ADDR.
    push_phdr(&mut elf, 1, 5, 0, LOAD_ADDR, file_size, 0x1000);
    // PT_GNU_STACK, PF_R | PF_W: a non-executable stack.
    push_phdr(&mut elf, 0x6474_e551, 6, 0, 0, 0, 0x10);
    elf.extend_from_slice(CODE);
    elf
}

fn push_phdr(elf: &mut Vec<u8>, kind: u32, flags: u32, off: u64, addr: u64, size: u64, align: u64) {
    elf.extend_from_slice(&kind.to_le_bytes());
    elf.extend_from_slice(&flags.to_le_bytes());
    elf.extend_from_slice(&off.to_le_bytes());
    elf.extend_from_slice(&addr.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&addr.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&align.to_le_bytes());
}

/// The trampoline in a sealed memfd, ready to be exec'd.
#[derive(Debug)]
pub struct Trampoline {
    fd: OwnedFd,
}

impl Trampoline {
    /// Writes the trampoline into a new memfd and seals it against any further
    /// change (write, grow, shrink, and a change of the seals themselves).
    #[cfg(target_arch = "x86_64")]
    pub fn new() -> nix::Result<Self> {
        let fd = memfd_create(
            c"berth-exec",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&elf_image())
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let fd = OwnedFd::from(file);
        let seals = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
        Ok(Self { fd })
    }

    /// Other architectures have no trampoline yet.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn new() -> nix::Result<Self> {
        Err(Errno::ENOSYS)
    }

    /// Replaces this process with `path` run as `argv` through the trampoline.
    /// Only returns on failure (of the trampoline's own exec; a failure to exec
    /// `path` becomes exit status 126 or 127 of the process).
    pub fn exec(&self, path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> Errno {
        let mut full: Vec<&CStr> = Vec::with_capacity(argv.len() + 2);
        full.push(MARKER);
        full.push(path);
        full.extend_from_slice(argv);
        crate::process::execveat_fd(self.fd.as_fd(), &full, envp)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn trampoline_file() -> (tempfile_path::TempPath, std::path::PathBuf) {
        let dir = tempfile_path::TempPath::new();
        let path = dir.0.join("trampoline");
        std::fs::write(&path, elf_image()).expect("write trampoline");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod trampoline");
        (dir, path)
    }

    /// A throwaway directory without pulling a dev-dependency into `sys`.
    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "berth-sys-test-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::create_dir_all(&p).expect("create temp dir");
                Self(p)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn runs_the_target_with_its_own_argv_and_env() {
        let (_dir, t) = trampoline_file();
        // `sh -s` reads its script from stdin, so `$0` is the argv[0] we chose.
        let mut child = Command::new(&t)
            .arg0("berth 1")
            .args(["/bin/sh", "my-sh", "-s", "one"])
            .env("FOO", "bar")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run trampoline");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"echo \"$0 $1 $FOO\"; exit 3\n")
            .expect("write script");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "my-sh one bar\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn missing_program_exits_127_and_unexecutable_126() {
        let (dir, t) = trampoline_file();
        let st = Command::new(&t)
            .arg0("berth 1")
            .args(["/no/such/program", "x"])
            .status()
            .expect("run trampoline");
        assert_eq!(st.code(), Some(127));
        let plain = dir.0.join("plain");
        std::fs::write(&plain, "not a program").expect("write");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let st = Command::new(&t)
            .arg0("berth 1")
            .arg(&plain)
            .arg("x")
            .status()
            .expect("run trampoline");
        assert_eq!(st.code(), Some(126));
    }

    #[test]
    fn refuses_to_run_as_an_interpreter() {
        let (dir, t) = trampoline_file();
        // Any other argv[0]: exit 126 without exec'ing anything.
        let st = Command::new(&t)
            .args(["/bin/sh", "sh", "-c", "exit 0"])
            .status()
            .expect("run trampoline");
        assert_eq!(st.code(), Some(126));
        // A script whose interpreter is the trampoline itself (what
        // `#!/proc/self/exe` amounts to) ends at once instead of looping.
        let script = dir.0.join("evil");
        std::fs::write(&script, format!("#!{}\n", t.display())).expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let st = Command::new(&t)
            .arg0("berth 1")
            .arg(&script)
            .arg("evil")
            .status()
            .expect("run trampoline");
        assert_eq!(st.code(), Some(126));
    }

    #[test]
    fn sealed_memfd_cannot_be_written() {
        let t = Trampoline::new().expect("make trampoline");
        let r = nix::unistd::write(&t.fd, b"x");
        assert_eq!(r, Err(Errno::EPERM));
    }
}
