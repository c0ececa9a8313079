using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace DomainShare.Engine.Configuration;

/// <summary>What an administrator is told when a listener (Minger over UDP, SMTP over TCP) cannot bind its endpoint.</summary>
public static class ListenerErrors
{
    /// <param name="service">"Minger" or "SMTP".</param>
    /// <param name="protocol">"UDP" or "TCP".</param>
    /// <param name="setting">The configuration key of the endpoint, such as smtp.endpoint.</param>
    public static DomainShareException BindFailed(string service, string protocol, string setting, IPEndPoint endpoint, SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => new DomainShareException(ErrorIds.EndpointInUse, ErrorKind.ResourceUnavailable,
            $"The {service} endpoint {endpoint} ({protocol}) is already in use by another program or another DomainShare server.",
            $"Stop the program that uses {protocol} port {endpoint.Port.ToString(CultureInfo.InvariantCulture)}, or set another port in {setting}.",
            endpoint, e),
        SocketError.AccessDenied => new DomainShareException(ErrorIds.InvalidEndpoint, ErrorKind.PermissionDenied,
            $"This process may not listen on the {service} endpoint {endpoint} ({protocol}).",
            $"Give the relay the right to use ports below 1024 (for example CAP_NET_BIND_SERVICE), or set a port above 1023 in {setting}.", endpoint, e),
        SocketError.AddressNotAvailable => new DomainShareException(ErrorIds.InvalidEndpoint, ErrorKind.InvalidArgument,
            $"The {service} endpoint {endpoint} names an address that is not one of this machine's.",
            $"Set one of this machine's addresses in {setting}, or 0.0.0.0 or [::] for all of them.", endpoint, e),
        _ => new DomainShareException(ErrorIds.InvalidEndpoint, ErrorKind.ResourceUnavailable,
            $"Cannot listen on the {service} endpoint {endpoint} ({protocol}): {e.Message}",
            $"Check {setting}: an address of this machine and a free {protocol} port.", endpoint, e),
    };
}
