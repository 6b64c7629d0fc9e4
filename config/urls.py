from django.contrib import admin
from django.urls import path

admin.site.site_header = "Event Ledger"
admin.site.site_title = "Event Ledger admin"
admin.site.index_title = "Curate actors, events and statements"

urlpatterns = [
    path("admin/", admin.site.urls),
]
