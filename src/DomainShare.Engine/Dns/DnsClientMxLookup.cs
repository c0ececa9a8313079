using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.DnsRecords;

/// <summary>The options of a live MX check: which DNS server to ask (null: the system's resolvers), the timeout of one try and the retries.</summary>
public sealed record MxLookupOptions
{
    public IPEndPoint? Server { get; init; }
    public TimeSpan Timeout { get; init; } = MxDefaults.QueryTimeout;
    public int Retries { get; init; } = MxDefaults.QueryRetries;

    /// <summary>Throws InvalidSetting for a timeout or retry count the check cannot run with.</summary>
    public MxLookupOptions Validate()
    {
        if (Timeout <= TimeSpan.Zero || Timeout > MxDefaults.MaxQueryTimeout)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                $"{Durations.Format(Timeout)} is not a valid DNS timeout: it must be more than 0 and at most {Durations.Format(MxDefaults.MaxQueryTimeout)}.",
                "Give a timeout such as 2s or 500ms.", Timeout);
        if (Retries is < 0 or > 5)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                $"{Retries} is not a valid number of DNS retries: it must be from 0 to 5.", "Give 0 to 5 retries.", Retries);
        return this;
    }
}

/// <summary>
/// Resolves live MX records with DnsClient: no cache (a check must see what DNS says now), the given server or the
/// system's resolvers, the given timeout per try and one retry by default. DNS failures become a status, never an exception.
/// </summary>
public sealed class DnsClientMxLookup : IMxLookup
{
    private readonly MxLookupOptions options;
    private readonly Lazy<LookupClient> client;

    public DnsClientMxLookup(MxLookupOptions options)
    {
        this.options = options.Validate();
        client = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);
        Server = options.Server is { } server ? DnsServerAddress.Format(server) : "system resolvers";
    }

    public string Server { get; private set; }

    private LookupClient Create()
    {
        var lookupOptions = options.Server is { } server ? new LookupClientOptions(server) : new LookupClientOptions();
        lookupOptions.UseCache = false;
        lookupOptions.Timeout = options.Timeout;
        lookupOptions.Retries = options.Retries;
        lookupOptions.ThrowDnsErrors = false;
        lookupOptions.UseRandomNameServer = false;
        var created = new LookupClient(lookupOptions);
        if (options.Server is null)
            Server = $"system resolvers ({string.Join(", ", created.NameServers.Select(n => n.ToString()))})";
        return created;
    }

    public async Task<MxLookupResult> LookupAsync(string domain, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        LookupClient lookup;
        try
        {
            lookup = client.Value;
        }
        catch (Exception ex) when (ex is DnsResponseException or InvalidOperationException or ArgumentException or SocketException or IOException)
        {
            return new(MxLookupStatus.Failed, [], Server, watch.Elapsed, $"no DNS resolver could be used: {ex.Message}");
        }
        IDnsQueryResponse response;
        try
        {
            response = await lookup.QueryAsync(domain, QueryType.MX, QueryClass.IN, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ct.IsCancellationRequested && ex is not OperationCanceledException)
        {
            // DnsClient reports a cancelled query as a timeout: the caller asked to stop, so it is a cancellation.
            throw new OperationCanceledException("The DNS query was cancelled.", ex, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (DnsResponseException ex) when (ex.Code == DnsResponseCode.ConnectionTimeout)
        {
            return new(MxLookupStatus.Timeout, [], Server, watch.Elapsed, TimeoutText());
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
        {
            return new(MxLookupStatus.Timeout, [], Server, watch.Elapsed, TimeoutText());
        }
        catch (DnsResponseException ex)
        {
            return new(MxLookupStatus.Failed, [], Server, watch.Elapsed, $"the DNS query failed: {ex.DnsError}: {ex.Message}");
        }
        catch (Exception ex) when (ex is SocketException or IOException or ArgumentException)
        {
            return new(MxLookupStatus.Failed, [], Server, watch.Elapsed, $"the DNS query failed: {ex.Message}");
        }
        watch.Stop();
        string answered = response.NameServer is { } ns ? ns.ToString() : Server;
        var code = response.Header.ResponseCode;
        return code switch
        {
            DnsHeaderResponseCode.NoError => Answers(response, answered, watch.Elapsed),
            DnsHeaderResponseCode.NotExistentDomain => new(MxLookupStatus.NonExistentDomain, [], answered, watch.Elapsed, "NXDOMAIN: the domain does not exist in DNS"),
            DnsHeaderResponseCode.ServerFailure => new(MxLookupStatus.ServerFailure, [], answered, watch.Elapsed, "SERVFAIL: the DNS server could not answer"),
            DnsHeaderResponseCode.Refused => new(MxLookupStatus.Refused, [], answered, watch.Elapsed, "REFUSED: the DNS server refused to answer"),
            _ => new(MxLookupStatus.Failed, [], answered, watch.Elapsed, $"the DNS server answered {code}: {response.ErrorMessage}"),
        };
    }

    private string TimeoutText()
        => $"no answer from {Server} within {Durations.Format(options.Timeout)} ({options.Retries + 1} {(options.Retries == 0 ? "try" : "tries")})";

    private static MxLookupResult Answers(IDnsQueryResponse response, string server, TimeSpan elapsed)
    {
        var records = response.Answers.MxRecords()
            .Select(r => new MxAnswer(r.Preference, TrimDot(r.Exchange.Value)))
            .OrderBy(r => r.Preference).ThenBy(r => r.Exchange, StringComparer.Ordinal)
            .ToList();
        return records.Count == 0
            ? new(MxLookupStatus.NoMxRecords, [], server, elapsed, "the domain has no MX record")
            : new(MxLookupStatus.Ok, records, server, elapsed);
    }

    private static string TrimDot(string name) => name.EndsWith('.') ? name[..^1] : name;
}
