//! Catalogue, customer and end-user routes: plain create / list / get / update resources.

use super::crud::crud;
use crate::domain::{Attribute, Customer, Edition, EndUser, Feature, Offering, Plan, Product};
use crate::services::catalogue::{
    self, CatalogueQuery, DefinitionPatch, EditionPatch, NewAttribute, NewEdition, NewFeature, NewOffering, NewPlan,
    NewProduct, OfferingPatch, PlanPatch, ProductPatch,
};
use crate::services::customers::{
    self, CustomerPatch, CustomerQuery, EndUserPatch, EndUserQuery, NewCustomer, NewEndUser,
};

crud!(
    products,
    "catalogue",
    "/products",
    "/products/{id}",
    "product",
    item = Product,
    new = NewProduct,
    patch = ProductPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_product,
    list = catalogue::list_products,
    get = catalogue::get_product,
    update = catalogue::update_product
);

crud!(
    features,
    "catalogue",
    "/features",
    "/features/{id}",
    "feature",
    item = Feature,
    new = NewFeature,
    patch = DefinitionPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_feature,
    list = catalogue::list_features,
    get = catalogue::get_feature,
    update = catalogue::update_feature
);

crud!(
    attributes,
    "catalogue",
    "/attributes",
    "/attributes/{id}",
    "attribute",
    item = Attribute,
    new = NewAttribute,
    patch = DefinitionPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_attribute,
    list = catalogue::list_attributes,
    get = catalogue::get_attribute,
    update = catalogue::update_attribute
);

crud!(
    editions,
    "catalogue",
    "/editions",
    "/editions/{id}",
    "edition",
    item = Edition,
    new = NewEdition,
    patch = EditionPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_edition,
    list = catalogue::list_editions,
    get = catalogue::get_edition,
    update = catalogue::update_edition
);

crud!(
    plans,
    "catalogue",
    "/plans",
    "/plans/{id}",
    "plan",
    item = Plan,
    new = NewPlan,
    patch = PlanPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_plan,
    list = catalogue::list_plans,
    get = catalogue::get_plan,
    update = catalogue::update_plan
);

crud!(
    offerings,
    "catalogue",
    "/offerings",
    "/offerings/{id}",
    "offering",
    item = Offering,
    new = NewOffering,
    patch = OfferingPatch,
    query = CatalogueQuery,
    create_permission = Permission::ManageCatalogue,
    update_permission = Permission::ManageCatalogue,
    create = catalogue::create_offering,
    list = catalogue::list_offerings,
    get = catalogue::get_offering,
    update = catalogue::update_offering
);

crud!(
    customer_routes,
    "customers",
    "/customers",
    "/customers/{id}",
    "customer",
    item = Customer,
    new = NewCustomer,
    patch = CustomerPatch,
    query = CustomerQuery,
    create_permission = Permission::CreateCustomers,
    update_permission = Permission::ManageCustomers,
    create = customers::create_customer,
    list = customers::list_customers,
    get = customers::get_customer,
    update = customers::update_customer
);

crud!(
    end_users,
    "customers",
    "/end-users",
    "/end-users/{id}",
    "end_user",
    item = EndUser,
    new = NewEndUser,
    patch = EndUserPatch,
    query = EndUserQuery,
    create_permission = Permission::ManageCustomers,
    update_permission = Permission::ManageCustomers,
    create = customers::create_end_user,
    list = customers::list_end_users,
    get = customers::get_end_user,
    update = customers::update_end_user
);
