//! The PostgreSQL side of the front: SSLRequest → TLS → StartupMessage → cleartext
//! password (as RDS asks for IAM users) → the user's `rds_iam` membership and the token →
//! the real server's own startup answer, then bytes both ways.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::Shared;

const SSL_REQUEST: u32 = 80_877_103;
const GSS_REQUEST: u32 = 80_877_104;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub(super) async fn serve(mut socket: TcpStream, tls: TlsAcceptor, shared: Arc<Shared>) -> Res<()> {
    loop {
        let len = socket.read_u32().await? as usize;
        let code = socket.read_u32().await?;
        match code {
            SSL_REQUEST => {
                socket.write_all(b"S").await?;
                break;
            }
            GSS_REQUEST => socket.write_all(b"N").await?,
            _ => {
                let mut rest = vec![0; len.saturating_sub(8)];
                socket.read_exact(&mut rest).await?;
                let user = param(&rest, "user");
                let msg = format!("no pg_hba.conf entry for host \"127.0.0.1\", user \"{user}\", SSL off");
                socket.write_all(&error("28000", &msg)).await?;
                return Ok(());
            }
        }
    }
    let mut client = tls.accept(socket).await?;
    let len = client.read_u32().await? as usize;
    let mut startup = vec![0; len.saturating_sub(4)];
    client.read_exact(&mut startup).await?;
    let user = param(&startup[4..], "user");
    // AuthenticationCleartextPassword
    client.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    let (kind, body) = message(&mut client).await?;
    if kind != b'p' {
        return Ok(());
    }
    let token = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned();

    let mut upstream = TcpStream::connect(shared.cfg.upstream).await?;
    upstream.set_nodelay(true)?;
    let mut packet = (len as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&startup);
    upstream.write_all(&packet).await?;
    let (greeting, failed) = until_ready(&mut upstream).await?;
    let iam_user = !failed && member_of_rds_iam(&mut upstream).await?;
    if !iam_user {
        // RDS compares the token with the user's password, which it cannot be.
        let msg = format!("password authentication failed for user \"{user}\"");
        client.write_all(&error("28P01", &msg)).await?;
        return Ok(());
    }
    if !shared.check(&user, &token) {
        let msg = format!("PAM authentication failed for user \"{user}\"");
        client.write_all(&error("28000", &msg)).await?;
        return Ok(());
    }
    client.write_all(&greeting).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// `name`'s value among the startup message's NUL-separated pairs.
fn param(pairs: &[u8], name: &str) -> String {
    let parts: Vec<&[u8]> = pairs.split(|b| *b == 0).collect();
    parts
        .chunks(2)
        .find(|kv| kv[0] == name.as_bytes())
        .and_then(|kv| kv.get(1))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

async fn message<S: AsyncRead + Unpin>(s: &mut S) -> Res<(u8, Vec<u8>)> {
    let kind = s.read_u8().await?;
    let len = s.read_u32().await? as usize;
    let mut body = vec![0; len.saturating_sub(4)];
    s.read_exact(&mut body).await?;
    Ok((kind, body))
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn error(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', message)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    frame(b'E', &body)
}

/// The server's messages up to ReadyForQuery, raw; `true` when it sent an error instead.
async fn until_ready(s: &mut TcpStream) -> Res<(Vec<u8>, bool)> {
    let mut raw = Vec::new();
    loop {
        let (kind, body) = message(s).await?;
        raw.extend_from_slice(&frame(kind, &body));
        match kind {
            b'Z' => return Ok((raw, false)),
            b'E' => return Ok((raw, true)),
            _ => {}
        }
    }
}

/// Whether the session's user is a member of `rds_iam`, asked on the upstream session
/// before the client gets it.
async fn member_of_rds_iam(s: &mut TcpStream) -> Res<bool> {
    let sql = "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
               JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'rds_iam' AND u.rolname = current_user)";
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    s.write_all(&frame(b'Q', &body)).await?;
    let mut member = false;
    loop {
        let (kind, body) = message(s).await?;
        match kind {
            // DataRow: one column of length 1, 't' or 'f'.
            b'D' => member = body.get(6) == Some(&b't'),
            b'Z' => return Ok(member),
            _ => {}
        }
    }
}
