using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace DomainShare.Engine.Smtp;

/// <summary>
/// One SMTP connection, from greeting to close: reads command lines from a <see cref="PipeReader"/> over the socket
/// (or the TLS stream after STARTTLS), answers through a <see cref="PipeWriter"/>, and streams DATA into the sink.
/// </summary>
/// <remarks>
/// <para>Replies are buffered and flushed only when no complete command is waiting, so a pipelining client (RFC 2920)
/// gets the replies to a whole group in one write.</para>
/// <para>Every way out is defined: QUIT (221), too many errors (421 4.7.0), a timeout (421 4.4.2), a server stop
/// (421 4.3.2), the client going away. <see cref="RunAsync"/> never throws: an unexpected exception is logged as a
/// failed session and the connection is closed; the listener never notices.</para>
/// </remarks>
internal sealed class SmtpSession
{
    private const int DataBufferBytes = 32 * 1024;
    private const int PipeBufferBytes = 8 * 1024;
    private const int DrainLimitBytes = 64 * 1024;
    private static readonly TimeSpan FinalReplyTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LingerTimeout = TimeSpan.FromSeconds(1);
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: PipeBufferBytes, minimumReadSize: 2048, leaveOpen: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 2048, leaveOpen: true);

    private readonly SmtpServer server;
    private readonly Socket socket;
    private readonly NetworkStream network;
    private readonly CancellationTokenSource io;
    private readonly long deadline;
    private readonly List<RecipientRoute> recipients = [];
    private readonly HashSet<string> askedRecipients = new(StringComparer.OrdinalIgnoreCase);
    private SslStream? tls;
    private PipeReader reader;
    private PipeWriter writer;
    private volatile bool stopRequested;
    private bool unflushed;
    private bool transportOpen = true;
    private byte[] line;
    private SmtpSessionInfo info;
    private bool extended;
    private int errors;
    private bool discardingLongLine;
    private bool inTransaction;
    private string? reversePath;
    private MailParameters mailParameters;
    private string pendingRecipient = "";
    private SmtpDataDecoder? decoder;

    public SmtpSession(SmtpServer server, Socket socket, string id, IPEndPoint remote, IPEndPoint local, SmtpServerOptions options)
    {
        this.server = server;
        this.socket = socket;
        Id = id;
        network = new NetworkStream(socket, ownsSocket: false);
        reader = PipeReader.Create(network, ReaderOptions);
        writer = PipeWriter.Create(network, WriterOptions);
        io = CancellationTokenSource.CreateLinkedTokenSource(server.AbortToken);
        deadline = Environment.TickCount64 + (long)options.SessionTimeout.TotalMilliseconds;
        line = ArrayPool<byte>.Shared.Rent(options.MaxLineBytes);
        info = new SmtpSessionInfo(id, remote, local, null, Secure: false);
    }

    public string Id { get; }

    public IPEndPoint Remote => info.Remote;

    private enum Next : byte { Continue, CheckRecipient, Data, StartTls, Close }

    private enum LineKind : byte { Ok, TooLong, BareLineFeed }

    /// <summary>Runs the session to its end. Never throws.</summary>
    public async Task RunAsync()
    {
        CancellationTokenRegistration onStop = default;
        try
        {
            onStop = server.StoppingToken.UnsafeRegister(static s => ((SmtpSession)s!).OnStopRequested(), this);
            var state = server.Current;
            Reply(state.Greeting);
            await CommandLoopAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (io.IsCancellationRequested)
        {
            var state = server.Current;
            var reply = server.AbortToken.IsCancellationRequested ? state.ShuttingDown
                : Environment.TickCount64 >= deadline ? state.SessionTimeLimit : state.IdleTimeout;
            server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: {(server.AbortToken.IsCancellationRequested ? "closed by the server stop" : "timed out")}.");
            await SendFinalReplyAsync(reply).ConfigureAwait(false);
        }
        catch (Exception e) when (IsDisconnect(e))
        {
            server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: connection lost: {e.GetType().Name}: {e.Message}");
        }
        catch (Exception e)
        {
            server.SessionFailed(this, e);
        }
        finally
        {
            onStop.Dispose();
            // The conversation is over: give the connection slot back now, not after the lingering close below, or a
            // busy client that reconnects at once is refused for connections it has already closed.
            server.SessionClosing(this);
            await CloseAsync().ConfigureAwait(false);
            io.Dispose();
            ArrayPool<byte>.Shared.Return(line);
            server.SessionEnded(this);
        }
    }

    /// <summary>The server is stopping: a session between transactions answers 421 at once; one in a transaction finishes it first.</summary>
    private void OnStopRequested()
    {
        stopRequested = true;
        try { reader.CancelPendingRead(); }
        catch (Exception) { } // the reader may be between a STARTTLS swap; the flag is checked before every read anyway
    }

    private static bool IsDisconnect(Exception e) => e is IOException or SocketException or ObjectDisposedException or AuthenticationException
        || e is OperationCanceledException || (e.InnerException is { } inner && IsDisconnect(inner));

    // ---- the command loop -----------------------------------------------------------------------------------------

    private async Task CommandLoopAsync()
    {
        // The command timeout bounds each command line as a whole, from the moment the session waits for it: a read
        // that brings part of a line does not restart it, or a client sending a byte at a time could hold a
        // connection forever (slowloris). It restarts once a line has been taken.
        long linesTaken = 0, armedAt = -1, lineDeadline = 0;
        while (true)
        {
            if (stopRequested && !inTransaction)
            {
                Reply(server.Current.ShuttingDown);
                await FlushAsync().ConfigureAwait(false);
                return;
            }
            if (unflushed) await FlushAsync().ConfigureAwait(false);
            if (armedAt != linesTaken)
            {
                armedAt = linesTaken;
                lineDeadline = Environment.TickCount64 + (long)server.Current.Options.CommandTimeout.TotalMilliseconds;
            }
            ArmUntil(lineDeadline);
            var result = await reader.ReadAsync(io.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var next = Next.Continue;
            while (next == Next.Continue && TryTakeLine(ref buffer, out int length, out var kind))
            {
                linesTaken++;
                next = Dispatch(length, kind);
                if (next == Next.CheckRecipient)
                {
                    await CheckRecipientAsync().ConfigureAwait(false);
                    next = Next.Continue;
                }
            }
            switch (next)
            {
                case Next.Close:
                    reader.AdvanceTo(buffer.Start);
                    await FlushAsync().ConfigureAwait(false);
                    return;
                case Next.Data:
                    reader.AdvanceTo(buffer.Start);
                    if (!await ReceiveMessageAsync().ConfigureAwait(false)) return;
                    continue;
                case Next.StartTls:
                    if (!buffer.IsEmpty)
                        server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: {buffer.Length.ToString(CultureInfo.InvariantCulture)} bytes sent after STARTTLS were discarded (RFC 3207 §5).");
                    reader.AdvanceTo(buffer.End); // nothing sent in clear text after STARTTLS may count as sent under TLS
                    if (!await StartTlsAsync().ConfigureAwait(false)) return;
                    continue;
            }

            // What is left is an incomplete line. One longer than any command is dropped as it comes, up to its line end.
            if (!discardingLongLine && buffer.Length >= server.Current.Options.MaxLineBytes) discardingLongLine = true;
            if (discardingLongLine) buffer = buffer.Slice(buffer.End);
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: the client closed the connection without QUIT.");
                return;
            }
        }
    }

    /// <summary>Takes the next complete line off <paramref name="buffer"/> and copies it (without CRLF) into <see cref="line"/>.</summary>
    private bool TryTakeLine(ref System.Buffers.ReadOnlySequence<byte> buffer, out int length, out LineKind kind)
    {
        length = 0;
        kind = LineKind.Ok;
        var lf = buffer.PositionOf((byte)'\n');
        if (lf is null) return false;
        var text = buffer.Slice(0, lf.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
        int max = server.Current.Options.MaxLineBytes;
        if (discardingLongLine || text.Length + 1 > max)
        {
            discardingLongLine = false;
            kind = LineKind.TooLong;
            return true;
        }
        if (text.IsEmpty || LastByte(text) != (byte)'\r')
        {
            kind = LineKind.BareLineFeed;
            return true;
        }
        length = (int)text.Length - 1;
        if (line.Length < length)
        {
            ArrayPool<byte>.Shared.Return(line);
            line = ArrayPool<byte>.Shared.Rent(max);
        }
        text.Slice(0, length).CopyTo(line);
        return true;

        static byte LastByte(in System.Buffers.ReadOnlySequence<byte> s)
        {
            if (s.IsSingleSegment) return s.FirstSpan[^1];
            return s.Slice(s.Length - 1).ToArray()[0];
        }
    }

    /// <summary>Executes one command line; replies are buffered. RCPT, DATA and STARTTLS continue asynchronously in the loop.</summary>
    private Next Dispatch(int length, LineKind kind)
    {
        var state = server.Current;
        if (stopRequested && !inTransaction)
        {
            Reply(state.ShuttingDown);
            return Next.Close;
        }
        if (kind == LineKind.TooLong) return Error("500 5.5.6 Line too long\r\n"u8);
        if (kind == LineKind.BareLineFeed) return Error("500 5.5.2 Syntax error: a command line must end with CRLF, not a bare LF\r\n"u8);

        var text = line.AsSpan(0, length);
        var content = SmtpCommandParser.Classify(text);
        if (content is LineContent.Control or LineContent.InvalidUtf8)
            return Error("500 5.5.2 Syntax error: control character or invalid byte in command\r\n"u8);
        var verb = SmtpCommandParser.ParseVerb(text, out var argument);
        if (content == LineContent.Utf8 && verb is not (SmtpVerb.Mail or SmtpVerb.Rcpt))
            return Error("500 5.5.2 Syntax error: non-ASCII characters are only allowed in addresses, with SMTPUTF8\r\n"u8);

        switch (verb)
        {
            case SmtpVerb.Ehlo:
            case SmtpVerb.Helo:
                if (!SmtpCommandParser.TryParseHeloName(argument, out var name))
                    return Error(verb == SmtpVerb.Ehlo ? "501 5.5.4 Syntax: EHLO domain-or-address-literal\r\n"u8 : "501 5.5.4 Syntax: HELO domain-or-address-literal\r\n"u8);
                ResetTransaction();
                extended = verb == SmtpVerb.Ehlo;
                info = info with { HeloName = name };
                Reply(!extended ? state.HeloReply : tls is null && state.TlsContext is not null ? state.EhloWithStartTls : state.Ehlo);
                return Next.Continue;

            case SmtpVerb.Mail:
                return Mail(argument, state);

            case SmtpVerb.Rcpt:
                return Rcpt(argument, state);

            case SmtpVerb.Data:
                if (!argument.IsEmpty) return Error("501 5.5.4 Syntax: DATA takes no parameters\r\n"u8);
                if (!inTransaction) return Error("503 5.5.1 Bad sequence of commands: MAIL first\r\n"u8);
                if (recipients.Count == 0)
                {
                    Reply("554 5.5.1 No valid recipients\r\n"u8); // RFC 2920 §3.1: the answer a pipelining client expects
                    return Next.Continue;
                }
                return Next.Data;

            case SmtpVerb.Rset:
                if (!argument.IsEmpty) return Error("501 5.5.4 Syntax: RSET takes no parameters\r\n"u8);
                ResetTransaction();
                Reply("250 2.0.0 OK\r\n"u8);
                return Next.Continue;

            case SmtpVerb.Noop:
                Reply("250 2.0.0 OK\r\n"u8);
                return Next.Continue;

            case SmtpVerb.Quit:
                Reply(state.Bye);
                return Next.Close;

            case SmtpVerb.Vrfy:
                if (argument.IsEmpty) return Error("501 5.5.4 Syntax: VRFY address\r\n"u8);
                Reply("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"u8);
                return Next.Continue;

            case SmtpVerb.Expn:
                Reply("502 5.5.1 EXPN is not available\r\n"u8);
                return Next.Continue;

            case SmtpVerb.Help:
                Reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS; see RFC 5321\r\n"u8);
                return Next.Continue;

            case SmtpVerb.StartTls:
                if (state.TlsContext is null) return Error("502 5.5.1 STARTTLS is not available\r\n"u8);
                if (tls is not null) return Error("503 5.5.1 Bad sequence of commands: TLS is already active\r\n"u8);
                if (!argument.IsEmpty) return Error("501 5.5.4 Syntax: STARTTLS takes no parameters\r\n"u8);
                if (inTransaction) return Error("503 5.5.1 Bad sequence of commands: a mail transaction is in progress\r\n"u8);
                Reply("220 2.0.0 Ready to start TLS\r\n"u8);
                return Next.StartTls;

            case SmtpVerb.NotImplemented:
                return Error("502 5.5.1 Command not implemented\r\n"u8);

            default:
                return Error("500 5.5.1 Command not recognized\r\n"u8);
        }
    }

    private Next Mail(ReadOnlySpan<byte> argument, SmtpServer.State state)
    {
        if (info.HeloName is null) return Error("503 5.5.1 Bad sequence of commands: send EHLO or HELO first\r\n"u8);
        if (inTransaction) return Error("503 5.5.1 Bad sequence of commands: nested MAIL command\r\n"u8);
        switch (SmtpCommandParser.ParseMail(argument, extended, out var path, out var parameters))
        {
            case ArgumentError.None:
                break;
            case ArgumentError.BadAddress:
            case ArgumentError.AddressTooLong:
                return Error("501 5.1.7 Bad sender address syntax\r\n"u8);
            case ArgumentError.NonAsciiAddress:
                return Error("553 5.6.7 A non-ASCII sender address needs the SMTPUTF8 parameter\r\n"u8);
            case ArgumentError.UnknownParameter:
                return Error("555 5.5.4 Unsupported MAIL parameter\r\n"u8);
            case ArgumentError.BadParameter:
                return Error("501 5.5.4 Bad MAIL parameter value\r\n"u8);
            default:
                return Error("501 5.5.4 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]\r\n"u8);
        }
        if (parameters.Size > state.Options.MaxMessageBytes)
        {
            Reply("552 5.3.4 Message size exceeds fixed maximum message size\r\n"u8);
            return Next.Continue;
        }
        if (parameters.Size is long announced && !HasRoomFor(announced))
        {
            // The disk is too full for the size the client announced: refuse now rather than after the whole content.
            Reply("452 4.3.1 Insufficient system storage, try again later\r\n"u8);
            return Next.Continue;
        }
        inTransaction = true;
        reversePath = path;
        mailParameters = parameters;
        Reply("250 2.1.0 Sender OK\r\n"u8);
        return Next.Continue;
    }

    private bool HasRoomFor(long bytes)
    {
        try
        {
            if (server.Sink.HasRoomFor(bytes)) return true;
            server.Warn(string.Create(CultureInfo.InvariantCulture, $"SMTP {Id}: refused MAIL FROM with SIZE={bytes}: the spool has no room for it now."));
            return false;
        }
        catch (Exception e)
        {
            server.Fault($"SMTP {Id}: the spool could not tell its free space", e);
            return true; // the end of DATA still answers 452 if the content does not fit
        }
    }

    private Next Rcpt(ReadOnlySpan<byte> argument, SmtpServer.State state)
    {
        if (!inTransaction) return Error("503 5.5.1 Bad sequence of commands: MAIL first\r\n"u8);
        switch (SmtpCommandParser.ParseRcpt(argument, mailParameters.SmtpUtf8, out var recipient))
        {
            case ArgumentError.None:
                break;
            case ArgumentError.BadAddress:
            case ArgumentError.AddressTooLong:
                return Error("501 5.1.3 Bad recipient address syntax\r\n"u8);
            case ArgumentError.NonAsciiAddress:
                return Error("553 5.6.7 A non-ASCII recipient address needs SMTPUTF8 in MAIL FROM\r\n"u8);
            case ArgumentError.UnknownParameter:
                return Error("555 5.5.4 Unsupported RCPT parameter\r\n"u8);
            default:
                return Error("501 5.5.4 Syntax: RCPT TO:<address>\r\n"u8);
        }
        if (askedRecipients.Contains(recipient))
        {
            Reply("250 2.1.5 Recipient OK (duplicate, delivered once)\r\n"u8);
            return Next.Continue;
        }
        if (recipients.Count >= state.Options.MaxRecipients)
        {
            Reply("452 4.5.3 Too many recipients\r\n"u8); // RFC 5321 §4.5.3.1.10: the client sends the rest in another transaction
            return Next.Continue;
        }
        pendingRecipient = recipient;
        return Next.CheckRecipient;
    }

    private async ValueTask CheckRecipientAsync()
    {
        var recipient = pendingRecipient;
        RecipientDecision? decision;
        Arm(server.Current.Options.CommandTimeout);
        try
        {
            decision = await server.Policy.CheckRecipientAsync(info, reversePath, recipient, io.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (io.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            server.Fault($"SMTP {Id}: the recipient policy failed for <{recipient}>", e);
            Reply("451 4.3.0 Temporary failure checking the recipient, try again later\r\n"u8);
            return;
        }
        if (decision is null || decision.Code is < 200 or > 599 || (decision.Accepted && decision.Route is null) || decision.Text is null)
        {
            server.Log(LogLevel.Error, $"SMTP {Id}: the recipient policy answered <{recipient}> with an invalid decision ({decision?.ToString() ?? "null"}).");
            Reply("451 4.3.0 Temporary failure checking the recipient, try again later\r\n"u8);
            return;
        }
        if (decision.Accepted)
        {
            recipients.Add(decision.Route!);
            askedRecipients.Add(recipient);
        }
        Reply(decision.Code, decision.Text);
    }

    private void ResetTransaction()
    {
        inTransaction = false;
        reversePath = null;
        mailParameters = default;
        recipients.Clear();
        askedRecipients.Clear();
    }

    private Next Error(ReadOnlySpan<byte> reply)
    {
        Reply(reply);
        var state = server.Current;
        if (++errors < state.Options.MaxErrors) return Next.Continue;
        server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: {errors.ToString(CultureInfo.InvariantCulture)} errors, closing.");
        Reply(state.TooManyErrors);
        return Next.Close;
    }

    // ---- DATA -----------------------------------------------------------------------------------------------------

    /// <summary>Receives one message into a draft and answers it. False when the session must end (the client left).</summary>
    private async ValueTask<bool> ReceiveMessageAsync()
    {
        var state = server.Current;
        var options = state.Options;
        var received = DateTimeOffset.Now;
        var envelope = new SmtpEnvelope(reversePath, recipients.ToArray(), info, received)
        {
            SmtpUtf8 = mailParameters.SmtpUtf8,
            BodyType = mailParameters.Body switch
            {
                SmtpBodyKind.SevenBit => SmtpBodyType.SevenBit,
                SmtpBodyKind.EightBitMime => SmtpBodyType.EightBitMime,
                _ => SmtpBodyType.Unspecified,
            },
        };
        IMessageDraft draft;
        try
        {
            draft = server.Sink.Begin(envelope);
        }
        catch (SmtpStorageException e)
        {
            server.Fault($"SMTP {Id}: the spool cannot take a message", e);
            ResetTransaction();
            Reply("452 4.3.1 Insufficient system storage, try again later\r\n"u8);
            return true;
        }
        catch (Exception e)
        {
            server.Log(LogLevel.Error, $"SMTP {Id}: the message sink failed to start a message: {e}");
            ResetTransaction();
            Reply("451 4.3.0 Temporary failure storing the message, try again later\r\n"u8);
            return true;
        }

        var output = ArrayPool<byte>.Shared.Rent(DataBufferBytes);
        var data = decoder ??= new SmtpDataDecoder();
        data.Reset(options.MaxMessageBytes, options.MaxDataLineBytes, options.MaxHops);
        bool storageFailed = false;
        Exception? sinkFailure = null;
        bool contentComplete = false;
        try
        {
            Reply("354 Start mail input; end with <CRLF>.<CRLF>\r\n"u8);
            await FlushAsync().ConfigureAwait(false);
            int buffered = WriteReceivedHeader(output, received, state);
            // As for commands, the data timeout bounds each text line as a whole (and the storing of what came with
            // it): it restarts once a line has ended, not with every read.
            long armedAt = -1, lineDeadline = 0;
            while (true)
            {
                if (armedAt != data.Lines)
                {
                    armedAt = data.Lines;
                    lineDeadline = Environment.TickCount64 + (long)options.DataTimeout.TotalMilliseconds;
                }
                ArmUntil(lineDeadline);
                var result = await reader.ReadAsync(io.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                DataStatus status;
                while (true)
                {
                    status = data.Decode(ref buffer, output.AsSpan(buffered), out int written);
                    buffered += written;
                    if (status != DataStatus.OutputFull) break;
                    buffered = await PassOnAsync(output, buffered).ConfigureAwait(false);
                }
                if (status == DataStatus.Complete)
                {
                    reader.AdvanceTo(buffer.Start);
                    contentComplete = true;
                    break;
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: the client closed the connection in the middle of DATA; nothing was stored.");
                    return false;
                }
            }
            if (data.Faults == DataFaults.None && buffered > 0) await PassOnAsync(output, buffered).ConfigureAwait(false);

            var faults = data.Faults;
            if (storageFailed) Reply("452 4.3.1 Insufficient system storage, try again later\r\n"u8);
            else if (sinkFailure is not null) Reply("451 4.3.0 Temporary failure storing the message, try again later\r\n"u8);
            else if ((faults & DataFaults.TooBig) != 0) Reply("552 5.3.4 Message size exceeds fixed maximum message size\r\n"u8);
            else if ((faults & DataFaults.TooManyHops) != 0)
                Reply(554, string.Create(CultureInfo.InvariantCulture, $"5.4.6 Too many hops: more than {options.MaxHops} Received: headers, probably a mail loop"));
            else if ((faults & DataFaults.BareLineEnding) != 0)
                Reply("554 5.6.0 Message refused: it contains a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)\r\n"u8);
            else if ((faults & DataFaults.LineTooLong) != 0)
                Reply(554, string.Create(CultureInfo.InvariantCulture, $"5.6.0 Message refused: a line is longer than {options.MaxDataLineBytes} octets"));
            else
                await CommitAsync(draft, data.ContentBytes, options).ConfigureAwait(false);
            if (faults != DataFaults.None && !storageFailed && sinkFailure is null)
                server.CountRefused();
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
            try
            {
                await draft.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                server.Fault($"SMTP {Id}: disposing a message draft failed", e);
            }
            if (!contentComplete) server.CountAbandoned(); // the client left, timed out, or the server stopped
            ResetTransaction();
        }

        async ValueTask<int> PassOnAsync(byte[] bytes, int count)
        {
            if (count == 0) return 0;
            try
            {
                await draft.WriteAsync(bytes.AsMemory(0, count), io.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (io.IsCancellationRequested)
            {
                throw;
            }
            catch (SmtpStorageException e)
            {
                server.Fault($"SMTP {Id}: the spool failed while storing a message", e);
                storageFailed = true;
                data.Abandon();
            }
            catch (Exception e)
            {
                server.Log(LogLevel.Error, $"SMTP {Id}: the message sink failed while storing a message: {e}");
                sinkFailure = e;
                data.Abandon();
            }
            return 0;
        }
    }

    private async ValueTask CommitAsync(IMessageDraft draft, long contentBytes, SmtpServerOptions options)
    {
        string id;
        Arm(options.DataTimeout);
        try
        {
            id = await draft.CommitAsync(io.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (io.IsCancellationRequested)
        {
            throw;
        }
        catch (SmtpStorageException e)
        {
            server.Fault($"SMTP {Id}: the spool failed to commit a message", e);
            Reply("452 4.3.1 Insufficient system storage, try again later\r\n"u8);
            return;
        }
        catch (Exception e)
        {
            server.Log(LogLevel.Error, $"SMTP {Id}: the message sink failed to commit a message: {e}");
            Reply("451 4.3.0 Temporary failure storing the message, try again later\r\n"u8);
            return;
        }
        server.CountAccepted();
        Reply(250, $"2.0.0 OK queued as {id}");
        server.Log(LogLevel.Information, string.Create(CultureInfo.InvariantCulture,
            $"SMTP {Id}: queued {id} from <{reversePath}> for {recipients.Count} recipient(s), {contentBytes} bytes, client {info.HeloName} [{Remote.Address}]{(tls is null ? "" : ", TLS")}."));
    }

    /// <summary>Our trace header (RFC 5321 §4.4), folded to stay readable: it is the first line of every stored message.</summary>
    private int WriteReceivedHeader(byte[] output, DateTimeOffset when, SmtpServer.State state)
    {
        // RFC 3848 and RFC 6531 §4.3: SMTP after HELO; ESMTP, ESMTPS, UTF8SMTP, UTF8SMTPS after EHLO.
        var protocol = !extended ? "SMTP" : (mailParameters.SmtpUtf8 ? "UTF8SMTP" : "ESMTP") + (tls is null ? "" : "S");
        var address = Remote.Address;
        var literal = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[IPv6:{address}]" : $"[{address}]";
        var forClause = recipients.Count == 1 ? $"\r\n\tfor <{recipients[0].Recipient}>" : "";
        var header = string.Create(CultureInfo.InvariantCulture,
            $"Received: from {info.HeloName} ({literal})\r\n\tby {state.Options.ServerName} with {protocol} id {Id}{forClause};\r\n\t{FormatDate(when)}\r\n");
        return Encoding.UTF8.GetBytes(header, output);
    }

    /// <summary>RFC 5322 §3.3 date-time: <c>Tue, 01 Nov 2026 09:30:00 +0100</c>.</summary>
    internal static string FormatDate(DateTimeOffset when)
    {
        var offset = when.Offset;
        char sign = offset < TimeSpan.Zero ? '-' : '+';
        offset = offset.Duration();
        return string.Create(CultureInfo.InvariantCulture,
            $"{when.ToString("ddd, dd MMM yyyy HH:mm:ss", CultureInfo.InvariantCulture)} {sign}{offset.Hours:00}{offset.Minutes:00}");
    }

    // ---- STARTTLS -------------------------------------------------------------------------------------------------

    private async ValueTask<bool> StartTlsAsync()
    {
        await FlushAsync().ConfigureAwait(false);
        var state = server.Current;
        if (state.TlsContext is not { } context)
        {
            // The certificate was removed by Configure between the reply and now: nothing sensible can follow.
            return false;
        }
        transportOpen = false;
        await reader.CompleteAsync().ConfigureAwait(false);
        await writer.CompleteAsync().ConfigureAwait(false);
        var ssl = new SslStream(network, leaveInnerStreamOpen: true);
        tls = ssl;
        Arm(state.Options.CommandTimeout);
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = context,
                ClientCertificateRequired = false,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, io.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: the TLS handshake failed: {e.Message}");
            return false;
        }
        reader = PipeReader.Create(ssl, ReaderOptions);
        writer = PipeWriter.Create(ssl, WriterOptions);
        transportOpen = true;
        if (stopRequested) reader.CancelPendingRead();
        // RFC 3207 §4.2: everything learnt before TLS is forgotten; the client must say EHLO again.
        ResetTransaction();
        extended = false;
        info = info with { HeloName = null, Secure = true };
        return true;
    }

    // ---- replies and I/O ------------------------------------------------------------------------------------------

    /// <summary>(Re)starts the clock for the next wait: at most <paramref name="timeout"/>, and never past the session's end.</summary>
    private void Arm(TimeSpan timeout) => ArmUntil(Environment.TickCount64 + (long)timeout.TotalMilliseconds);

    /// <summary>Sets the clock to run out at <paramref name="until"/> (<see cref="Environment.TickCount64"/>), or at the session's end if sooner.</summary>
    private void ArmUntil(long until)
    {
        long ms = Math.Min(until, deadline) - Environment.TickCount64;
        if (ms <= 0) io.Cancel();
        else io.CancelAfter(TimeSpan.FromMilliseconds(ms));
    }

    private void Reply(ReadOnlySpan<byte> reply)
    {
        writer.Write(reply);
        unflushed = true;
    }

    /// <summary>A reply with a text from elsewhere: one line, printable ASCII only, at most 512 octets (RFC 5321 §4.5.3.1.5).</summary>
    private void Reply(int code, string text)
    {
        int length = Math.Min(text.Length, 500);
        var span = writer.GetSpan(length + 6);
        span[0] = (byte)('0' + code / 100);
        span[1] = (byte)('0' + code / 10 % 10);
        span[2] = (byte)('0' + code % 10);
        span[3] = (byte)' ';
        for (int i = 0; i < length; i++)
        {
            char c = text[i];
            span[4 + i] = c is >= ' ' and <= '~' ? (byte)c : (byte)'?';
        }
        span[4 + length] = (byte)'\r';
        span[5 + length] = (byte)'\n';
        writer.Advance(length + 6);
        unflushed = true;
    }

    private async ValueTask FlushAsync()
    {
        Arm(server.Current.Options.CommandTimeout);
        await writer.FlushAsync(io.Token).ConfigureAwait(false);
        unflushed = false;
    }

    /// <summary>Best effort, for a session that ends on a timeout or a stop: the 421, within a short time.</summary>
    private async ValueTask SendFinalReplyAsync(byte[] reply)
    {
        if (!transportOpen) return;
        try
        {
            using var timeout = new CancellationTokenSource(FinalReplyTimeout);
            Reply(reply);
            await writer.FlushAsync(timeout.Token).ConfigureAwait(false);
            unflushed = false;
        }
        catch (Exception e)
        {
            server.Log(LogLevel.Debug, $"SMTP {Id} {Remote.Address}: the closing reply could not be sent: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Closes gracefully: TLS close_notify, FIN, then reads and drops what the client still sends for a moment, so that
    /// closing with unread input (which sends a RST) cannot make the client's system drop our last reply.
    /// </summary>
    private async ValueTask CloseAsync()
    {
        try { await reader.CompleteAsync().ConfigureAwait(false); } catch (Exception) { }
        try { await writer.CompleteAsync().ConfigureAwait(false); } catch (Exception) { }
        byte[]? scratch = null;
        try
        {
            using var linger = new CancellationTokenSource(LingerTimeout);
            if (tls is not null && transportOpen)
            {
                try { await tls.ShutdownAsync().WaitAsync(linger.Token).ConfigureAwait(false); } catch (Exception) { }
            }
            socket.Shutdown(SocketShutdown.Send);
            scratch = ArrayPool<byte>.Shared.Rent(4096);
            int drained = 0;
            while (drained < DrainLimitBytes)
            {
                int n = await socket.ReceiveAsync(scratch, SocketFlags.None, linger.Token).ConfigureAwait(false);
                if (n == 0) break;
                drained += n;
            }
        }
        catch (Exception)
        {
            // The client is gone or slow to close: either way we are done with it.
        }
        finally
        {
            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
            try { tls?.Dispose(); } catch (Exception) { }
            network.Dispose();
            socket.Dispose();
        }
    }
}
